package ipam

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/scopedcache"
)

// RBAC of the controller (make manifests turns these into config/rbac/controller).
// Events go out through events.k8s.io; leader election still records core
// Events.
//
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services/status,verbs=get;patch;update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=bgplb.io,resources=ipallocations,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=bgplb.io,resources=ippools,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=bgplb.io,resources=ippools/status,verbs=get;update;patch

// LegacyPoolFinalizer is the finalizer older versions put on every IPPool
// to keep a deleted pool until no Service held its addresses. It is legacy:
// the IPAllocation objects are the locks, independent of the pool object,
// so a pool may go at once (and `kubectl delete -k` can remove the CRDs
// with the controller). The controller only removes it, from pools an older
// version marked, so upgraded clusters uninstall cleanly too.
const LegacyPoolFinalizer = "bgplb.io/pool-protection"

// Options configure the IPAM controllers.
type Options struct {
	// DefaultClass: also handle LoadBalancer Services without a class.
	DefaultClass bool
	// Workers is how many Services are reconciled at once (default 16).
	// Decisions are serialized on a short mutex; workers overlap the API
	// writes, which is where the time goes.
	Workers int
	// PoolStatusDelay coalesces pool status writes during bursts (default 500ms).
	PoolStatusDelay time.Duration
	// NoMetalLBAliases turns off reading MetalLB's Service annotations
	// (metallb.io/ and metallb.universe.tf/ loadBalancerIPs, address-pool,
	// allow-shared-ip) as aliases of bgplb's; they are read by default.
	NoMetalLBAliases bool
}

// Setup registers the IPAM controllers (Services and IPPools) with a manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.PoolStatusDelay <= 0 {
		opts.PoolStatusDelay = 500 * time.Millisecond
	}
	st := NewState()
	svcQ, poolQ := &queueRef{}, &queueRef{}
	st.OnRetry = func(keys []svcKey) { svcQ.add(keys...) }
	st.OnPoolUsage = func(pool string) { poolQ.addAfter(pool, opts.PoolStatusDelay) }
	b := &builderState{state: st, cache: mgr.GetCache(), reader: mgr.GetClient(), svcQ: svcQ, defaultClass: opts.DefaultClass}
	rec, err := newEventRecorder(mgr, "bgplb-controller")
	if err != nil {
		return err
	}

	// Services live in a cache of their own: only type LoadBalancer (a field
	// selector, so the cluster's other Services cost neither memory nor
	// events), without managedFields, and read without deep copies (nothing
	// here modifies what it reads).
	svcCache, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient: mgr.GetHTTPClient(),
		Scheme:     mgr.GetScheme(),
		Mapper:     mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{&corev1.Service{}: {
			Field:                 fields.OneTermEqualSelector("spec.type", string(corev1.ServiceTypeLoadBalancer)),
			Transform:             cache.TransformStripManagedFields(),
			UnsafeDisableDeepCopy: ptr.To(true),
		}},
	})
	if err != nil {
		return fmt.Errorf("creating the Service cache: %w", err)
	}
	// As a cache, it starts (and syncs) before leader election is won.
	if err := scopedcache.AddToManager(mgr, svcCache); err != nil {
		return fmt.Errorf("the Service cache: %w", err)
	}
	b.services = svcCache

	sr := &ServiceReconciler{
		builderState:   b,
		client:         mgr.GetClient(),
		services:       svcCache,
		apiReader:      mgr.GetAPIReader(),
		recorder:       rec,
		defaultClass:   opts.DefaultClass,
		metallbAliases: !opts.NoMetalLBAliases,
	}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("ipam-service").
		WatchesRawSource(source.Kind(svcCache, &corev1.Service{},
			&handler.TypedEnqueueRequestForObject[*corev1.Service]{}, sr.servicePredicate())).
		Watches(&v1alpha1.IPAllocation{}, allocationHandler(st, poolQ)).
		Watches(&corev1.Namespace{}, namespaceHandler(st), builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WatchesRawSource(svcQ.source()).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.Workers}).
		Complete(sr)
	if err != nil {
		return fmt.Errorf("setting up the Service controller: %w", err)
	}

	if err := indexAllocationsByPool(mgr); err != nil {
		return err
	}
	pr := &PoolReconciler{builderState: b, client: mgr.GetClient(), recorder: rec, poolQ: poolQ}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("ipam-pool").
		// Labels too: they are copied to the pool's IPAllocations.
		For(&v1alpha1.IPPool{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, metaChanged{}))).
		WatchesRawSource(poolQ.source()).
		// One worker: each reconcile applies the whole set of pools read from
		// the cache, so two at once could apply an older set last.
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(pr)
	if err != nil {
		return fmt.Errorf("setting up the IPPool controller: %w", err)
	}
	return nil
}

// builderState builds the State from the cache once, before the first decision.
type builderState struct {
	state  *State
	cache  cache.Cache
	reader client.Reader
	svcQ   *queueRef
	mu     sync.Mutex
	// services and defaultClass find the addresses Services show at start.
	services     client.Reader
	defaultClass bool
}

func (b *builderState) ensureBuilt(ctx context.Context) error {
	if b.state.Built() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state.Built() {
		return nil
	}
	// Listing from the cache waits for the informers to sync, so every
	// IPAllocation that existed at start is known before anything is handed out.
	var pools v1alpha1.IPPoolList
	if err := b.reader.List(ctx, &pools); err != nil {
		return fmt.Errorf("listing IPPools: %w", err)
	}
	var allocs v1alpha1.IPAllocationList
	if err := b.reader.List(ctx, &allocs); err != nil {
		return fmt.Errorf("listing IPAllocations: %w", err)
	}
	var svcs corev1.ServiceList
	if b.services != nil {
		// Read-only: the Service cache hands out its own objects.
		if err := b.services.List(ctx, &svcs); err != nil {
			return fmt.Errorf("listing Services: %w", err)
		}
	}
	keys, claimed := b.state.BuildClaiming(pools.Items, allocs.Items, ShownBy(svcs.Items, b.defaultClass))
	ctrl.LoggerFrom(ctx).Info("rebuilt allocations", "pools", len(pools.Items), "allocations", len(allocs.Items),
		"claimedFromStatus", claimed)
	// Holders are reconciled so those deleted while we were down release.
	b.svcQ.add(keys...)
	return nil
}

// queueRef hands a controller's queue to code outside its event sources.
type queueRef struct {
	mu sync.RWMutex
	q  workqueue.TypedRateLimitingInterface[reconcile.Request]
}

func (r *queueRef) source() source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		r.mu.Lock()
		r.q = q
		r.mu.Unlock()
		return nil
	})
}

// add enqueues Services; before the controller started, the initial list
// reconciles everything anyway, so dropping is fine.
func (r *queueRef) add(keys ...svcKey) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.q == nil {
		return
	}
	for _, k := range keys {
		r.q.Add(reconcile.Request{NamespacedName: k})
	}
}

func (r *queueRef) addAfter(name string, d time.Duration) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.q == nil {
		return
	}
	r.q.AddAfter(reconcile.Request{NamespacedName: svcKey{Name: name}}, d)
}

// allocationHandler keeps the State in step with IPAllocations changed by
// anyone but this process (a previous instance, a user deleting one), and
// has the pool of an allocation whose pool labels are behind reconciled.
func allocationHandler(st *State, poolQ *queueRef) handler.EventHandler {
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], a *v1alpha1.IPAllocation) {
		for _, k := range st.Observe(a) {
			q.Add(reconcile.Request{NamespacedName: k})
		}
		if st.PoolLabelsBehind(a) {
			poolQ.addAfter(a.Spec.Pool, 0)
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if a, ok := e.Object.(*v1alpha1.IPAllocation); ok {
				enqueue(q, a)
			}
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if a, ok := e.ObjectNew.(*v1alpha1.IPAllocation); ok {
				enqueue(q, a)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if a, ok := e.Object.(*v1alpha1.IPAllocation); ok {
				for _, k := range st.Forget(a) {
					q.Add(reconcile.Request{NamespacedName: k})
				}
			}
		},
	}
}

// namespaceHandler retries the pending Services of a namespace whose labels
// changed (pools may select namespaces by label).
func namespaceHandler(st *State) handler.EventHandler {
	return handler.Funcs{
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			for _, k := range st.PendingIn(e.ObjectNew.GetName()) {
				q.Add(reconcile.Request{NamespacedName: k})
			}
		},
	}
}

// metaChanged passes pool updates that change deletion or finalizers, which
// do not bump the generation: a pool marked for deletion gives nothing new,
// and a legacy finalizer put back (by an older controller still running
// during an upgrade) is removed again.
type metaChanged struct{ predicate.Funcs }

func (metaChanged) Update(e event.UpdateEvent) bool {
	o, n := e.ObjectOld, e.ObjectNew
	return !o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) || len(o.GetFinalizers()) != len(n.GetFinalizers())
}
