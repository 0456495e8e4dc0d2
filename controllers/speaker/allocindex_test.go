package speaker

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// The IPAllocations' handler keeps the index by Service, marks the
// allocation and queues the node, for every kind of event.
func TestAllocationIndexFollowsEvents(t *testing.T) {
	x := newAllocationIndex()
	var marked []string
	key := reconcile.Request{NamespacedName: types.NamespacedName{Name: thisNode}}
	h := indexing(x, key, func(n string) { marked = append(marked, n) })
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	ctx := context.Background()
	of := func(svc string) []string {
		names := map[string]struct{}{}
		ns, name, _ := strings.Cut(svc, "/")
		x.of(types.NamespacedName{Namespace: ns, Name: name}, names)
		return slices.Sorted(maps.Keys(names))
	}
	a1 := alloc("198.51.100.1", "p1", "a/web", "a/api") // shared
	a2 := alloc("198.51.100.2", "p1", "a/web")
	a1moved := alloc("198.51.100.1", "p1", "b/db")
	steps := []struct {
		name  string
		event func()
		want  map[string][]string
	}{
		{"created", func() {
			h.Create(ctx, event.TypedCreateEvent[*v1alpha1.IPAllocation]{Object: a1}, q)
			h.Create(ctx, event.TypedCreateEvent[*v1alpha1.IPAllocation]{Object: a2}, q)
		}, map[string][]string{"a/web": {a1.Name, a2.Name}, "a/api": {a1.Name}, "b/db": nil}},
		{"given to another Service", func() {
			h.Update(ctx, event.TypedUpdateEvent[*v1alpha1.IPAllocation]{ObjectOld: a1, ObjectNew: a1moved}, q)
		}, map[string][]string{"a/web": {a2.Name}, "a/api": nil, "b/db": {a1.Name}}},
		{"the same update again (a resync)", func() {
			h.Update(ctx, event.TypedUpdateEvent[*v1alpha1.IPAllocation]{ObjectOld: a1moved, ObjectNew: a1moved}, q)
		}, map[string][]string{"a/web": {a2.Name}, "b/db": {a1.Name}}},
		{"deleted", func() {
			h.Delete(ctx, event.TypedDeleteEvent[*v1alpha1.IPAllocation]{Object: a1moved}, q)
		}, map[string][]string{"a/web": {a2.Name}, "b/db": nil}},
	}
	for _, s := range steps {
		marked = nil
		s.event()
		for svc, want := range s.want {
			if got := of(svc); !slices.Equal(got, want) && len(got)+len(want) > 0 {
				t.Errorf("%s: allocations of %s = %v, want %v", s.name, svc, got, want)
			}
		}
		if len(marked) == 0 || q.Len() != 1 {
			t.Errorf("%s: marked %v, queue length %d", s.name, marked, q.Len())
		}
		k, _ := q.Get()
		q.Done(k)
	}
	if len(x.bySvc) != 1 {
		t.Errorf("left %v", x.bySvc)
	}
}
