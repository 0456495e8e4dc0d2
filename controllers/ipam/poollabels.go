package ipam

import (
	"context"
	"fmt"
	"maps"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/patch"
)

// Every IPAllocation carries its pool's labels (spec.poolLabels), so that a
// BGPAdvertisement selecting pools by label still selects the address once
// its pool is deleted (the speaker then matches ipPoolSelector against
// them). The Service reconciler sets them when it creates an allocation;
// the pool reconciler keeps them in step while the pool exists, and fills
// them in on allocations made before the field existed. Once the pool is
// gone nothing writes them: they stay as last known.

// allocationPoolField indexes IPAllocations in the cache by spec.pool.
const allocationPoolField = "spec.pool"

// labelsRetry is how soon a pool is reconciled again after one of its
// allocations changed while its labels were being written.
const labelsRetry = time.Second

// indexAllocationsByPool lets the pool reconciler list a pool's
// IPAllocations from the cache.
func indexAllocationsByPool(mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.IPAllocation{}, allocationPoolField,
		func(o client.Object) []string {
			if a, ok := o.(*v1alpha1.IPAllocation); ok {
				return []string{a.Spec.Pool}
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("indexing IPAllocations by pool: %w", err)
	}
	return nil
}

// WithPoolLabels returns a copy of alloc whose spec.poolLabels are
// poolLabels, or nil when they already are (no labels and an empty map are
// the same). It is the only change the pool reconciler makes to an
// IPAllocation: a merge patch from alloc to the copy names nothing else.
func WithPoolLabels(alloc *v1alpha1.IPAllocation, poolLabels map[string]string) *v1alpha1.IPAllocation {
	if maps.Equal(alloc.Spec.PoolLabels, poolLabels) {
		return nil
	}
	out := alloc.DeepCopy()
	out.Spec.PoolLabels = maps.Clone(poolLabels)
	if len(out.Spec.PoolLabels) == 0 {
		out.Spec.PoolLabels = nil
	}
	return out
}

// PoolLabelsBehind reports whether an IPAllocation's pool exists (as the
// State last applied the pools) with other labels than the allocation
// carries: the pool is then reconciled to bring them in step. It covers an
// allocation created with labels its pool has just changed, which the
// pool's sweep may not have seen yet.
func (s *State) PoolLabelsBehind(obj *v1alpha1.IPAllocation) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.byNam[obj.Spec.Pool]
	return v != nil && !maps.Equal(v.Labels, obj.Spec.PoolLabels)
}

// syncPoolLabels writes the pool's labels to each of its IPAllocations (in
// the cache) that carries others. Each write is a merge patch of
// spec.poolLabels alone, guarded by the resourceVersion it was computed
// from, so it never replaces anything another writer (this or another
// controller's Service reconciler) put there: an allocation that changed
// meanwhile answers Conflict and is done on the next pass (retry).
func (r *PoolReconciler) syncPoolLabels(ctx context.Context, pool *v1alpha1.IPPool) (retry bool, err error) {
	var list v1alpha1.IPAllocationList
	// Read-only use of the cached objects: WithPoolLabels copies.
	if err := r.client.List(ctx, &list, client.MatchingFields{allocationPoolField: pool.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return false, fmt.Errorf("listing the IPAllocations of IPPool %s: %w", pool.Name, err)
	}
	log := ctrl.LoggerFrom(ctx)
	written := 0
	for i := range list.Items {
		before := &list.Items[i]
		after := WithPoolLabels(before, pool.Labels)
		if after == nil {
			continue
		}
		switch err := r.client.Patch(ctx, after, patch.MergeFrom(before, patch.Optimistic)); {
		case err == nil:
			written++
			log.V(1).Info("pool labels written to IPAllocation", "allocation", before.Name, "labels", after.Spec.PoolLabels)
		case apierrors.IsNotFound(err):
			// Released meanwhile.
		case apierrors.IsConflict(err):
			log.V(1).Info("IPAllocation changed while its pool labels were written; retrying", "allocation", before.Name)
			retry = true
		default:
			return retry, fmt.Errorf("writing the pool labels of IPAllocation %s: %w", before.Name, err)
		}
	}
	if written > 0 {
		log.Info("brought the pool labels of IPAllocations in step", "allocations", written)
	}
	return retry, nil
}
