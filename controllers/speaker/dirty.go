package speaker

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// dirtySet collects, between two runs of the node reconciler, what watch
// events touched: Services (their EndpointSlices count as the Service) and
// IPAllocations, or everything (a peer, advertisement, pool, the Node, a
// Secret). The work queue still holds the node's single key, so a burst of
// events collapses into one run that handles all of them.
type dirtySet struct {
	mu          sync.Mutex
	all         bool
	services    map[types.NamespacedName]struct{}
	allocations map[string]struct{}
}

// dirty is what one run of the reconciler takes over.
type dirty struct {
	all         bool
	services    map[types.NamespacedName]struct{}
	allocations map[string]struct{}
}

// newDirtySet starts with everything dirty: the first run computes the
// whole node.
func newDirtySet() *dirtySet {
	return &dirtySet{all: true}
}

func (d *dirtySet) markAll() {
	d.mu.Lock()
	d.all, d.services, d.allocations = true, nil, nil
	d.mu.Unlock()
}

func (d *dirtySet) markService(key types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.all {
		return // covered
	}
	if d.services == nil {
		d.services = make(map[types.NamespacedName]struct{})
	}
	d.services[key] = struct{}{}
}

func (d *dirtySet) markAllocation(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.all {
		return
	}
	if d.allocations == nil {
		d.allocations = make(map[string]struct{})
	}
	d.allocations[name] = struct{}{}
}

// take returns what is dirty and starts a new, clean set.
func (d *dirtySet) take() dirty {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := dirty{all: d.all, services: d.services, allocations: d.allocations}
	d.all, d.services, d.allocations = false, nil, nil
	return out
}

// marking is an event handler that records what an event makes dirty
// (mark sees the old and the new object of an update) and then enqueues
// the node's key, unless mark says the event does not concern the node.
// Marking first means the run that takes the key sees the mark.
func marking[T client.Object](key reconcile.Request, mark func(T) bool) handler.TypedEventHandler[T, reconcile.Request] {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	enqueue := func(q queue, marked ...bool) {
		for _, m := range marked {
			if m {
				q.Add(key)
				return
			}
		}
	}
	return handler.TypedFuncs[T, reconcile.Request]{
		CreateFunc: func(_ context.Context, e event.TypedCreateEvent[T], q queue) {
			enqueue(q, mark(e.Object))
		},
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[T], q queue) {
			enqueue(q, mark(e.ObjectOld), mark(e.ObjectNew))
		},
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[T], q queue) {
			enqueue(q, mark(e.Object))
		},
		GenericFunc: func(_ context.Context, e event.TypedGenericEvent[T], q queue) {
			enqueue(q, mark(e.Object))
		},
	}
}
