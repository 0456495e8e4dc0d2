package speaker

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/scopedcache"
)

// Options configure the speaker's controllers.
type Options struct {
	// NodeName is the node this speaker runs on.
	NodeName string
	// BGP is the speaker's BGP server (a *bgp.Speaker).
	BGP BGP
	// DrainTime is how long an excluded node announces its routes with
	// GRACEFUL_SHUTDOWN before withdrawing them.
	DrainTime time.Duration
	// DefaultClass: whether Services without a loadBalancerClass are
	// bgplb's too (--default-class; it must match the controller's). Nil
	// means true, the flag's default.
	DefaultClass *bool
	// StatusInterval is how often the sessions are polled, and the least
	// time between two writes of the node's BGPNodeStatus. Default 1s.
	StatusInterval time.Duration
}

// Handle gives the speaker's shutdown access to the status writer.
type Handle struct {
	writer *nodeStatusWriter
}

// MarkStopped records in the node's BGPNodeStatus that the speaker stopped
// (best effort; call it after the manager has stopped).
func (h *Handle) MarkStopped(ctx context.Context, reason string) error {
	return h.writer.markStopped(ctx, reason)
}

// Setup adds the speaker's controllers to the manager:
//   - a cache of its own, so that it can watch only this node's Node and
//     BGPNodeStatus and only the Secrets of the install namespace (the
//     speaker's RBAC allows no more Secrets), and drop managedFields from
//     everything it keeps;
//   - the node reconciler (one key, any change enqueues it and marks what
//     it touched: see dirtySet);
//   - the BGPNodeStatus writer.
//
// BGPPeer status is the controller's (package peerstatus).
func Setup(mgr ctrl.Manager, opts Options) (*Handle, error) {
	if opts.NodeName == "" {
		return nil, errors.New("speaker: NodeName is required")
	}
	if opts.BGP == nil {
		return nil, errors.New("speaker: BGP is required")
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = time.Second
	}
	c, err := scopedcache.New(mgr, map[client.Object]cache.ByObject{
		&corev1.Node{}: {Field: fields.OneTermEqualSelector("metadata.name", opts.NodeName)},
		// Only this node's status: other nodes' writes are none of its
		// business and would fan out to every speaker.
		&v1alpha1.BGPNodeStatus{}: {Field: fields.OneTermEqualSelector("metadata.name", opts.NodeName)},
	})
	if err != nil {
		return nil, fmt.Errorf("the speaker's cache: %w", err)
	}
	allocations, err := allocationStore(context.Background(), c)
	if err != nil {
		return nil, err
	}
	st := stores{allocations: allocations, byService: newAllocationIndex(), factStore: newFactStore(opts.NodeName, nil)}

	log := mgr.GetLogger().WithName("speaker").WithValues("node", opts.NodeName)
	recorder := mgr.GetEventRecorder("bgplb-speaker")
	hub := newViewHub()
	r := &NodeReconciler{
		NodeName:     opts.NodeName,
		Reader:       c,
		BGP:          opts.BGP,
		DrainTime:    opts.DrainTime,
		DefaultClass: ptr.Deref(opts.DefaultClass, true),
		Recorder:     recorder,
		Now:          time.Now,
		hub:          hub,
		stores:       st,
		dirty:        newDirtySet(),
	}
	key := reconcile.Request{NamespacedName: types.NamespacedName{Name: opts.NodeName}}
	// What events make dirty decides how much a run recomputes: a change
	// to one Service, its EndpointSlices or its IPAllocation only that
	// Service's addresses; anything node-wide (rare) the whole node.
	all := func(client.Object) bool { r.dirty.markAll(); return true }
	b := ctrl.NewControllerManagedBy(mgr).Named("speaker-node")
	b = b.WatchesRawSource(source.Kind(c, &corev1.Node{}, marking(key, func(o *corev1.Node) bool { return all(o) }), nodeChanged()))
	b = b.WatchesRawSource(source.Kind(c, &v1alpha1.BGPPeer{}, marking(key, func(o *v1alpha1.BGPPeer) bool { return all(o) }),
		predicate.TypedGenerationChangedPredicate[*v1alpha1.BGPPeer]{}))
	b = b.WatchesRawSource(source.Kind(c, &v1alpha1.BGPAdvertisement{}, marking(key, func(o *v1alpha1.BGPAdvertisement) bool { return all(o) }),
		predicate.TypedGenerationChangedPredicate[*v1alpha1.BGPAdvertisement]{}))
	b = b.WatchesRawSource(source.Kind(c, &v1alpha1.IPPool{}, marking(key, func(o *v1alpha1.IPPool) bool { return all(o) }),
		predicate.TypedLabelChangedPredicate[*v1alpha1.IPPool]{}))
	b = b.WatchesRawSource(source.Kind(c, &corev1.Secret{}, marking(key, func(o *corev1.Secret) bool { return all(o) })))
	b = b.WatchesRawSource(source.Kind(c, &v1alpha1.IPAllocation{}, indexing(st.byService, key, r.dirty.markAllocation)))
	// Services and EndpointSlices: their facts only (factStore), and only
	// changes of those mark the Service.
	facts, err := newFactSource(mgr, st.factStore, key)
	if err != nil {
		return nil, err
	}
	facts.mark = r.dirty.markService
	b = b.WatchesRawSource(facts)
	if err := b.Complete(r); err != nil {
		return nil, fmt.Errorf("creating the node reconciler: %w", err)
	}

	w := &nodeStatusWriter{
		nodeName:  opts.NodeName,
		reader:    c,
		apiReader: mgr.GetAPIReader(),
		writer:    mgr.GetClient(),
		bgp:       opts.BGP,
		hub:       hub,
		interval:  opts.StatusInterval,
		recorder:  recorder,
		log:       log.WithName("status"),
		now:       time.Now,
	}
	if err := mgr.Add(w); err != nil {
		return nil, fmt.Errorf("adding the status writer: %w", err)
	}
	return &Handle{writer: w}, nil
}

// allocationStore gets the IPAllocations' informer store from the cache
// (creating the informer; it starts with the cache).
func allocationStore(ctx context.Context, c cache.Cache) (toolscache.Store, error) {
	inf, err := c.GetInformer(ctx, &v1alpha1.IPAllocation{})
	if err != nil {
		return nil, fmt.Errorf("getting the IPAllocation informer: %w", err)
	}
	sii, ok := inf.(toolscache.SharedIndexInformer)
	if !ok {
		return nil, fmt.Errorf("the IPAllocation informer is a %T, not a SharedIndexInformer", inf)
	}
	return sii.GetStore(), nil
}

// nodeChanged passes the Node updates that matter (labels, addresses, a
// re-created Node), not the periodic status heartbeats.
func nodeChanged() predicate.TypedPredicate[*corev1.Node] {
	return predicate.TypedFuncs[*corev1.Node]{
		UpdateFunc: func(e event.TypedUpdateEvent[*corev1.Node]) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return o.UID != n.UID || !equality.Semantic.DeepEqual(o.Labels, n.Labels) ||
				!equality.Semantic.DeepEqual(o.Status.Addresses, n.Status.Addresses)
		},
	}
}
