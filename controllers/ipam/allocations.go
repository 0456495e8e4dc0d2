package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/ownership"
	"github.com/bgplb/bgplb/controllers/internal/patch"
	"github.com/bgplb/bgplb/internal/allocator"
)

// maxSyncAttempts bounds how often one write of an IPAllocation is retried
// after the object turned out to have changed; the reconcile is then retried.
const maxSyncAttempts = 5

// syncRecord makes a record's IPAllocation say what memory proposes, with the
// API server as the judge:
//   - a new address is created; AlreadyExists means someone holds the name;
//   - an existing object is patched or deleted only if it is still the one
//     last seen (UID and resourceVersion preconditions);
//   - a holder is taken off an object only if the API says that Service no
//     longer wants the address (stillWanted);
//   - when the object differs from what memory knew, memory takes the
//     object's word (State.refresh) and errLost is returned if Services this
//     record proposed lost it, so their decision is made again.
//
// With confirm, an object memory believes up to date is read back first: the
// caller is about to show its address in a status that does not show it yet.
func (r *ServiceReconciler) syncRecord(ctx context.Context, rec *record, confirm bool) error {
	rec.wmu.Lock()
	defer rec.wmu.Unlock()
	name := v1alpha1.AllocationName(rec.addr.String())
	log := ctrl.LoggerFrom(ctx).WithValues("address", rec.addr)
	for range maxSyncAttempts {
		w := r.state.snapshot(rec)
		if rm := w.removed(); w.exists && len(rm) > 0 {
			keep, err := r.stillWanted(ctx, w.addr, rm)
			if err != nil {
				return err
			}
			if len(keep) > 0 {
				log.V(1).Info("not releasing the address: the API says these Services still want it", "services", holders(keep))
				r.svcQ.add(r.state.rejoin(rec, keep)...)
				continue
			}
		}
		var err error
		switch {
		case w.upToDate && !confirm:
			return nil
		case w.upToDate:
			confirm = false
			if err := r.reread(ctx, rec); err != nil {
				return err
			}
			continue
		case !w.exists && len(w.want) == 0:
			r.state.gone(rec)
			return nil
		case !w.exists:
			obj := w.created()
			if err = r.client.Create(ctx, obj); err == nil {
				log.V(1).Info("created IPAllocation", "services", holders(obj.Spec.Services))
				r.state.wrote(rec, obj)
				return nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating IPAllocation %s: %w", name, err)
			}
		case len(w.want) == 0:
			err = r.client.Delete(ctx, w.base(), client.Preconditions{UID: &w.uid, ResourceVersion: &w.rv})
			if err == nil || apierrors.IsNotFound(err) {
				log.V(1).Info("deleted IPAllocation", "was", holders(w.written))
				r.state.gone(rec)
				return nil
			}
			if !apierrors.IsConflict(err) {
				return fmt.Errorf("deleting IPAllocation %s: %w", name, err)
			}
		default:
			obj := w.base()
			obj.Spec = w.object().Spec
			// A JSON merge patch of the spec, built by the library, that
			// applies only to the resourceVersion last seen.
			err = r.client.Patch(ctx, obj, patch.MergeFrom(w.base(), patch.Optimistic))
			if err == nil {
				log.V(1).Info("updated IPAllocation", "was", holders(w.written), "services", holders(obj.Spec.Services))
				r.state.wrote(rec, obj)
				return nil
			}
			if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				return fmt.Errorf("updating IPAllocation %s: %w", name, err)
			}
		}
		// The object is not what memory knew: read it and take its word.
		log.V(1).Info("IPAllocation changed by someone else; reading it", "reason", err.Error())
		if err := r.reread(ctx, rec); err != nil {
			return err
		}
	}
	return fmt.Errorf("IPAllocation %s kept changing while being written; retrying", name)
}

// reread reads a record's object from the API (not the cache) and makes
// memory match it. The Services involved are reconciled again; errLost
// means Services the record proposed do not hold it.
func (r *ServiceReconciler) reread(ctx context.Context, rec *record) error {
	name := v1alpha1.AllocationName(rec.addr.String())
	cur := &v1alpha1.IPAllocation{}
	var obj *v1alpha1.IPAllocation
	switch err := r.apiReader.Get(ctx, types.NamespacedName{Name: name}, cur); {
	case err == nil:
		obj = cur
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("reading IPAllocation %s: %w", name, err)
	}
	keys, lost := r.state.refresh(rec, obj)
	r.svcQ.add(keys...)
	if lost {
		ctrl.LoggerFrom(ctx).V(1).Info("lost an address race: another Service holds it", "address", rec.addr, "holders", holders(obj.Spec.Services))
		return errLost
	}
	return nil
}

// verify reads the object of an address from the API and makes memory
// match it (see Decision.Verify).
func (r *ServiceReconciler) verify(ctx context.Context, addr netip.Addr) error {
	rec := r.state.record(addr)
	if rec == nil {
		return nil
	}
	rec.wmu.Lock()
	defer rec.wmu.Unlock()
	if err := r.reread(ctx, rec); err != nil && !errors.Is(err, errLost) {
		return err
	}
	return nil
}

// stillWanted returns the holders that, according to the API server (not a
// cache), still want the address: the Service exists with that UID, is
// bgplb's, and shows the address in its status or requests it. A holder
// about to be shown the address by another controller does not count: that
// controller's status write is based on an older resourceVersion than the
// status write that moved the Service elsewhere, so it fails.
func (r *ServiceReconciler) stillWanted(ctx context.Context, addr netip.Addr, refs []v1alpha1.ServiceReference) ([]v1alpha1.ServiceReference, error) {
	var keep []v1alpha1.ServiceReference
	for _, ref := range refs {
		svc := &corev1.Service{}
		if err := r.apiReader.Get(ctx, refKey(ref), svc); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("reading Service %s/%s before releasing %s: %w", ref.Namespace, ref.Name, addr, err)
		}
		if (ref.UID != "" && svc.UID != ref.UID) || !ownership.Qualifies(svc, r.defaultClass) {
			continue
		}
		req, _ := r.parse(svc)
		if slices.Contains(IngressAddrs(svc), addr) || req.Addrs[allocator.FamilyOf(addr)] == addr {
			keep = append(keep, v1alpha1.ServiceReference{Namespace: svc.Namespace, Name: svc.Name, UID: svc.UID})
		}
	}
	return keep, nil
}
