package speaker

import (
	"context"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// allocationIndex maps each Service to the IPAllocations that record it,
// so that a change to a Service finds its addresses without a scan. The
// allocations' event handler keeps it, before it marks the allocation
// dirty: the run that follows sees it. client-go's indexer would keep a
// set (a map) per Service: 3 MB at 10,000 Services, for one name each.
type allocationIndex struct {
	mu    sync.RWMutex
	bySvc map[types.NamespacedName][]string
}

func newAllocationIndex() *allocationIndex {
	return &allocationIndex{bySvc: map[types.NamespacedName][]string{}}
}

// update moves the allocation from the Services old records to those
// next records (nil: it was created, or deleted).
func (x *allocationIndex) update(old, next *v1alpha1.IPAllocation) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old != nil {
		for _, ref := range old.Spec.Services {
			key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
			l := slices.DeleteFunc(x.bySvc[key], func(n string) bool { return n == old.Name })
			if len(l) == 0 {
				delete(x.bySvc, key)
			} else {
				x.bySvc[key] = l
			}
		}
	}
	if next != nil {
		for _, ref := range next.Spec.Services {
			key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
			if l := x.bySvc[key]; !slices.Contains(l, next.Name) {
				x.bySvc[key] = append(l, next.Name)
			}
		}
	}
}

// of adds to names the IPAllocations that record the Service.
func (x *allocationIndex) of(key types.NamespacedName, names map[string]struct{}) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, n := range x.bySvc[key] {
		names[n] = struct{}{}
	}
}

// indexing is the IPAllocations' event handler: it updates the index,
// then mark records the allocation dirty, then the node's key is queued.
func indexing(x *allocationIndex, key reconcile.Request, mark func(string)) handler.TypedEventHandler[*v1alpha1.IPAllocation, reconcile.Request] {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	done := func(q queue, name string) {
		mark(name)
		q.Add(key)
	}
	return handler.TypedFuncs[*v1alpha1.IPAllocation, reconcile.Request]{
		CreateFunc: func(_ context.Context, e event.TypedCreateEvent[*v1alpha1.IPAllocation], q queue) {
			x.update(nil, e.Object)
			done(q, e.Object.Name)
		},
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[*v1alpha1.IPAllocation], q queue) {
			x.update(e.ObjectOld, e.ObjectNew)
			done(q, e.ObjectNew.Name)
		},
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[*v1alpha1.IPAllocation], q queue) {
			x.update(e.Object, nil)
			done(q, e.Object.Name)
		},
		GenericFunc: func(_ context.Context, e event.TypedGenericEvent[*v1alpha1.IPAllocation], q queue) {
			done(q, e.Object.Name)
		},
	}
}
