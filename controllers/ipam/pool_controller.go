package ipam

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/patch"
)

// PoolReconciler keeps the State's pools in step with the IPPools, writes
// pool status and metrics, keeps each pool's labels on its IPAllocations
// (poollabels.go), and removes the finalizer older versions put on pools.
// A deleted pool goes at once: the IPAllocations, not the pool object, are
// what keeps an address with its Service.
type PoolReconciler struct {
	*builderState
	client   client.Client
	recorder events.EventRecorder
	poolQ    *queueRef
}

// Reconcile implements reconcile.Reconciler.
func (r *PoolReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if err := r.ensureBuilt(ctx); err != nil {
		return ctrl.Result{}, err
	}
	var list v1alpha1.IPPoolList
	if err := r.client.List(ctx, &list); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing IPPools: %w", err)
	}
	// Overlaps make pools depend on each other, so the whole set is applied.
	changed, retry := r.state.SetPools(BuildPoolViews(list.Items))
	r.svcQ.add(retry...)
	for _, name := range changed {
		if name != req.Name {
			r.poolQ.addAfter(name, 0)
		}
	}
	i := slices.IndexFunc(list.Items, func(p v1alpha1.IPPool) bool { return p.Name == req.Name })
	if i < 0 {
		// Gone: nothing to report on. Its held addresses stay with their
		// Services (their condition says the pool was deleted); the log
		// says so once, for operators, when its metrics go.
		if forgetPoolMetrics(req.Name) {
			ctrl.LoggerFrom(ctx).Info("IPPool deleted; the addresses it gave stay with their Services until released",
				"held", r.state.HeldUnder(req.Name))
		}
		return ctrl.Result{}, nil
	}
	pool := &list.Items[i]
	if fins, found := WithoutLegacyFinalizer(pool.Finalizers); found {
		// Every pool is reconciled on start, so this migrates all of them.
		if err := r.setFinalizers(ctx, pool, fins); err != nil {
			return ctrl.Result{}, err
		}
		ctrl.LoggerFrom(ctx).Info("removed the legacy finalizer", "finalizer", LegacyPoolFinalizer)
		if !pool.DeletionTimestamp.IsZero() && len(fins) == 0 {
			return ctrl.Result{}, nil // the API server deletes it now
		}
	}
	var res ctrl.Result
	labelsBehind, err := r.syncPoolLabels(ctx, pool)
	if err != nil {
		return ctrl.Result{}, err
	}
	if labelsBehind {
		res.RequeueAfter = labelsRetry
	}
	view := r.state.Pool(pool.Name)
	stats, outside := r.state.Usage(pool.Name)
	setPoolMetrics(pool.Name, stats)

	status := PoolStatus(pool.Status, PoolStatusInput{View: view, Stats: stats, Outside: outside}, metav1.Now())
	if PoolStatusEqual(status, pool.Status) {
		return res, nil
	}
	// A patch from the status read to the one computed, built as a diff so
	// fields that went to zero (omitempty) are written as null, not left
	// behind. Guarded by resourceVersion although only this controller
	// writes it: computed from a cache that has not seen our previous write,
	// it would put back that write's predecessor's transition times (a
	// spurious change, and under load a write for every stale read).
	out := pool.DeepCopy()
	out.Status = status
	if err := r.client.Status().Patch(ctx, out, patch.MergeFrom(pool, patch.Optimistic)); err != nil {
		if apierrors.IsConflict(err) {
			// Our own status writes do not trigger a reconcile (generation
			// predicate), so ask again once the cache has caught up.
			ctrl.LoggerFrom(ctx).V(1).Info("IPPool changed since it was read; computing its status again")
			return ctrl.Result{RequeueAfter: staleRetry}, nil
		}
		return ctrl.Result{}, fmt.Errorf("patching status of IPPool %s: %w", pool.Name, err)
	}
	r.poolEvents(pool, pool.Status.Conditions, status.Conditions)
	return res, nil
}

// WithoutLegacyFinalizer returns the finalizers without
// LegacyPoolFinalizer, and whether it was there. Other finalizers (someone
// else's) are kept in order.
func WithoutLegacyFinalizer(fins []string) ([]string, bool) {
	if !slices.Contains(fins, LegacyPoolFinalizer) {
		return fins, false
	}
	return slices.DeleteFunc(slices.Clone(fins), func(f string) bool { return f == LegacyPoolFinalizer }), true
}

// setFinalizers writes the finalizer list, guarded by resourceVersion so a
// concurrent change by someone else (another finalizer added) is not lost:
// a conflict fails the reconcile, which is retried on the fresh object.
func (r *PoolReconciler) setFinalizers(ctx context.Context, pool *v1alpha1.IPPool, fins []string) error {
	out := pool.DeepCopy()
	out.Finalizers = fins
	if err := r.client.Patch(ctx, out, patch.MergeFrom(pool, patch.Optimistic)); err != nil {
		return fmt.Errorf("setting finalizers of IPPool %s: %w", pool.Name, err)
	}
	return nil
}

// poolEvents records an event for each condition that turned to the state
// an operator must hear about.
func (r *PoolReconciler) poolEvents(pool *v1alpha1.IPPool, old, cur []metav1.Condition) {
	for _, t := range []struct {
		typ    string
		status metav1.ConditionStatus
		kind   string
	}{
		{v1alpha1.PoolOverlapping, metav1.ConditionTrue, corev1.EventTypeWarning},
		{v1alpha1.PoolExhausted, metav1.ConditionTrue, corev1.EventTypeWarning},
		{v1alpha1.PoolAddressesOutsideRanges, metav1.ConditionTrue, corev1.EventTypeWarning},
		{v1alpha1.PoolReady, metav1.ConditionTrue, corev1.EventTypeNormal},
		{v1alpha1.PoolReady, metav1.ConditionFalse, corev1.EventTypeWarning},
	} {
		c := meta.FindStatusCondition(cur, t.typ)
		if c == nil || c.Status != t.status {
			continue
		}
		if o := meta.FindStatusCondition(old, t.typ); o != nil && o.Status == c.Status && o.Reason == c.Reason && o.Message == c.Message {
			continue
		}
		if t.typ == v1alpha1.PoolExhausted || t.typ == v1alpha1.PoolReady {
			// Counts change the message all the time; only transitions matter.
			if o := meta.FindStatusCondition(old, t.typ); o != nil && o.Status == c.Status && o.Reason == c.Reason {
				continue
			}
		}
		r.recorder.Eventf(pool, nil, t.kind, c.Reason, "Update", "%s", c.Message)
	}
}
