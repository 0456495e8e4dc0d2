package ipam

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/patch"
)

// PoolReconciler keeps the State's pools in step with the IPPools, guards
// pool deletion with a finalizer, and writes pool status and metrics.
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
		forgetPoolMetrics(req.Name)
		return ctrl.Result{}, nil
	}
	pool := &list.Items[i]
	view := r.state.Pool(pool.Name)
	stats, usage := r.state.Usage(pool.Name)
	setPoolMetrics(pool.Name, stats)

	hasFinalizer := slices.Contains(pool.Finalizers, PoolFinalizer)
	switch {
	case view.Deleting && usage.Held == 0:
		if hasFinalizer {
			if err := r.setFinalizers(ctx, pool, slices.DeleteFunc(slices.Clone(pool.Finalizers), func(f string) bool { return f == PoolFinalizer })); err != nil {
				return ctrl.Result{}, err
			}
			r.recorder.Eventf(pool, nil, corev1.EventTypeNormal, v1alpha1.ReasonReleased, "Delete", "no Service holds an address of this pool any more; it can go")
		}
		return ctrl.Result{}, nil
	case !view.Deleting && !hasFinalizer:
		if err := r.setFinalizers(ctx, pool, append(slices.Clone(pool.Finalizers), PoolFinalizer)); err != nil {
			return ctrl.Result{}, err
		}
	}

	status := PoolStatus(pool.Status, PoolStatusInput{
		View: view, Stats: stats, Holders: usage.Holders, HeldCount: usage.Held, Outside: usage.Outside,
	}, metav1.Now())
	if PoolStatusEqual(status, pool.Status) {
		return ctrl.Result{}, nil
	}
	// A patch from the status read to the one computed, not guarded by
	// resourceVersion (only ipam-pool writes it). Built as a diff so fields
	// that went to zero (omitempty) are written as null, not left behind.
	out := pool.DeepCopy()
	out.Status = status
	if err := r.client.Status().Patch(ctx, out, patch.MergeFrom(pool, patch.LastWriteWins)); err != nil {
		return ctrl.Result{}, fmt.Errorf("patching status of IPPool %s: %w", pool.Name, err)
	}
	r.poolEvents(pool, pool.Status.Conditions, status.Conditions)
	return ctrl.Result{}, nil
}

// setFinalizers writes the finalizer list, guarded by resourceVersion so a
// concurrent change by someone else is not lost.
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
		{v1alpha1.PoolDeleting, metav1.ConditionTrue, corev1.EventTypeNormal},
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
