package ipam

import (
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/patch"
	"github.com/bgplb/bgplb/internal/allocator"
)

// Assigned is one address a Service holds.
type Assigned struct {
	Addr netip.Addr
	Pool string
	// Outside is true when the pool's ranges no longer contain Addr.
	Outside bool
	// PoolGone is true when the pool no longer exists (it was deleted): the
	// Service keeps Addr until it releases it.
	PoolGone bool
}

// Outcome is the result of one allocation decision for a Service, from
// which its status is derived.
type Outcome struct {
	// Manage is false when bgplb does not handle the Service (anymore).
	Manage bool
	// Addrs are the addresses the Service holds, in ipFamilies order.
	Addrs []Assigned
	// Failure is the first problem met, if any: a missing required family,
	// an invalid request, or a request that cannot be met yet.
	Failure *Failure
	// Missing lists the families wanted but not held (PreferDualStack may
	// lack one and still be Allocated).
	Missing []allocator.Family
	// MissingWhy explains Missing.
	MissingWhy string
	// AliasConflicts are MetalLB annotations ignored because they disagree
	// with the one that wins; appended to the condition's message.
	AliasConflicts []string
}

// Complete reports whether nothing is left to retry.
func (o Outcome) Complete() bool { return !o.Manage || (o.Failure == nil && len(o.Missing) == 0) }

// ServiceCondition is the bgplb.io/AddressAllocated condition for an outcome
// (LastTransitionTime unset; SetCondition fills it).
func ServiceCondition(o Outcome, generation int64) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionAddressAllocated, ObservedGeneration: generation}
	held := describeAddrs(o.Addrs)
	switch {
	case o.Failure != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, o.Failure.Reason, o.Failure.Message
		if len(o.Addrs) > 0 {
			c.Message += "; keeping " + held
		}
	case slices.ContainsFunc(o.Addrs, func(a Assigned) bool { return a.PoolGone }):
		// Before AddressOutsidePool: a deleted pool has no ranges, so its
		// addresses are outside them too, and this says more.
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonPoolDeleted
		var gone []string
		for _, a := range o.Addrs {
			if a.PoolGone && !slices.Contains(gone, a.Pool) {
				gone = append(gone, a.Pool)
			}
		}
		c.Message = "holds " + held + "; pool " + strings.Join(gone, ", ") + " no longer exists: " +
			"the address stays with this Service until the Service releases it (deleted, no longer a LoadBalancer, or asking for another address), " +
			"and the deleted pool gives no new addresses"
	case slices.ContainsFunc(o.Addrs, func(a Assigned) bool { return a.Outside }):
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonAddressOutsidePool
		var out []string
		for _, a := range o.Addrs {
			if a.Outside {
				out = append(out, fmt.Sprintf("%s is no longer in pool %s", a.Addr, a.Pool))
			}
		}
		c.Message = "holds " + held + "; " + strings.Join(out, ", ") +
			": the address stays with this Service and is not handed out again once released"
	default:
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonAllocated
		c.Message = "holds " + held
	}
	if len(o.Missing) > 0 && o.Failure == nil {
		c.Message += fmt.Sprintf("; no %s address yet (%s), added when a pool allows", joinFamilies(o.Missing), o.MissingWhy)
	}
	if len(o.AliasConflicts) > 0 {
		c.Message += "; conflicting annotations, bgplb's own win: " + strings.Join(o.AliasConflicts, "; ")
	}
	return c
}

func describeAddrs(as []Assigned) string {
	if len(as) == 0 {
		return "no address"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = fmt.Sprintf("%s (pool %s)", a.Addr, a.Pool)
		if a.PoolGone {
			parts[i] = fmt.Sprintf("%s (pool %s, deleted)", a.Addr, a.Pool)
		}
	}
	return strings.Join(parts, " and ")
}

func joinFamilies(fs []allocator.Family) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, " and ")
}

// Ingress is the status.loadBalancer.ingress for the addresses: one VIP
// entry per address, in order.
func Ingress(addrs []Assigned) []corev1.LoadBalancerIngress {
	if len(addrs) == 0 {
		return nil
	}
	vip := corev1.LoadBalancerIPModeVIP
	out := make([]corev1.LoadBalancerIngress, len(addrs))
	for i, a := range addrs {
		out[i] = corev1.LoadBalancerIngress{IP: a.Addr.String(), IPMode: &vip}
	}
	return out
}

// IngressAddrs returns the valid IPs of a Service's status ingress.
func IngressAddrs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// ServiceStatus is the part of a Service's status bgplb writes.
type ServiceStatus struct {
	Ingress []corev1.LoadBalancerIngress
	// Condition is nil when bgplb's condition must be absent.
	Condition *metav1.Condition
}

// CurrentStatus extracts bgplb's part of a Service's status.
func CurrentStatus(svc *corev1.Service) ServiceStatus {
	st := ServiceStatus{Ingress: svc.Status.LoadBalancer.Ingress}
	if c := meta.FindStatusCondition(svc.Status.Conditions, v1alpha1.ConditionAddressAllocated); c != nil {
		cc := *c
		st.Condition = &cc
	}
	return st
}

// DesiredStatus computes bgplb's part of the Service status for an outcome,
// keeping the current LastTransitionTime when the condition status is
// unchanged. For a Service bgplb no longer manages, it removes the
// addresses it held (released) and its condition, and leaves anything
// another controller wrote.
func DesiredStatus(cur ServiceStatus, o Outcome, released []netip.Addr, generation int64, now metav1.Time) ServiceStatus {
	if !o.Manage {
		var keep []corev1.LoadBalancerIngress
		for _, in := range cur.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil && slices.Contains(released, a.Unmap()) {
				continue
			}
			keep = append(keep, in)
		}
		return ServiceStatus{Ingress: keep}
	}
	c := ServiceCondition(o, generation)
	c.LastTransitionTime = now
	if cur.Condition != nil && cur.Condition.Status == c.Status {
		c.LastTransitionTime = cur.Condition.LastTransitionTime
	}
	return ServiceStatus{Ingress: Ingress(o.Addrs), Condition: &c}
}

// StatusEqual reports whether two statuses are the same for bgplb's purpose.
func StatusEqual(a, b ServiceStatus) bool {
	if len(a.Ingress) != len(b.Ingress) || (len(a.Ingress) > 0 && !equality.Semantic.DeepEqual(a.Ingress, b.Ingress)) {
		return false
	}
	if (a.Condition == nil) != (b.Condition == nil) {
		return false
	}
	if a.Condition == nil {
		return true
	}
	x, y := *a.Condition, *b.Condition
	return x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message &&
		x.ObservedGeneration == y.ObservedGeneration && x.LastTransitionTime.Equal(&y.LastTransitionTime)
}

// PoolStatusInput is what a pool's status is computed from.
type PoolStatusInput struct {
	View  *PoolView
	Stats map[allocator.Family]allocator.Stats
	// Outside lists up to a few addresses held outside the pool's ranges.
	Outside []string
}

// legacyPoolDeleting is the pool condition older versions kept (True while a
// deleted pool waited for its addresses to be released, under the pool's
// finalizer). Only removed from statuses they wrote.
const legacyPoolDeleting = "Deleting"

// PoolStatus computes an IPPool's status from the allocator's counts,
// keeping LastTransitionTime of conditions whose status did not change.
func PoolStatus(old v1alpha1.IPPoolStatus, in PoolStatusInput, now metav1.Time) v1alpha1.IPPoolStatus {
	v := in.View
	st := v1alpha1.IPPoolStatus{ObservedGeneration: v.Generation}
	avail := new(big.Int)
	var exhausted []string
	var orphaned int64
	for _, f := range []allocator.Family{allocator.IPv4, allocator.IPv6} {
		s, ok := in.Stats[f]
		if !ok && !v.HasFamily(f) {
			continue
		}
		fs := &v1alpha1.PoolFamilyStatus{Total: "0", Available: "0"}
		if ok {
			fs.Total, fs.Available = s.Total.String(), s.Available.String()
			fs.Allocated = s.Allocated.Int64() + s.Orphaned.Int64()
			orphaned += s.Orphaned.Int64()
			avail.Add(avail, s.Available)
			if v.HasFamily(f) && s.Available.Sign() == 0 {
				exhausted = append(exhausted, string(f))
			}
		}
		st.Allocated += fs.Allocated
		if f == allocator.IPv4 {
			st.IPv4 = fs
		} else {
			st.IPv6 = fs
		}
	}
	st.Available = avail.String()
	st.Conditions = slices.Clone(old.Conditions)
	set := func(t string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg,
			ObservedGeneration: v.Generation, LastTransitionTime: now})
	}
	switch {
	case v.Invalid != "":
		set(v1alpha1.PoolReady, false, v1alpha1.ReasonInvalidSpec, v.Invalid)
	case v.Deleting:
		set(v1alpha1.PoolReady, false, v1alpha1.ReasonDeleting,
			"the pool is being deleted (another finalizer keeps it) and gives no new addresses; held addresses stay with their Services")
	case v.OverlapsWith != "":
		set(v1alpha1.PoolReady, false, v1alpha1.ReasonOverlapping, fmt.Sprintf("overlaps the older pool %s; gives no addresses until fixed", v.OverlapsWith))
	case v.Disabled:
		set(v1alpha1.PoolReady, false, v1alpha1.ReasonDisabled, "spec.disabled is true: addresses already held stay, no new ones are given")
	default:
		set(v1alpha1.PoolReady, true, v1alpha1.ReasonPoolReady, "the pool gives addresses")
	}
	if len(exhausted) > 0 {
		set(v1alpha1.PoolExhausted, true, v1alpha1.ReasonExhausted, fmt.Sprintf("no free %s address", strings.Join(exhausted, " or ")))
	} else {
		set(v1alpha1.PoolExhausted, false, v1alpha1.ReasonAddressesAvailable, avail.String()+" addresses available")
	}
	if v.OverlapsWith != "" {
		set(v1alpha1.PoolOverlapping, true, v1alpha1.ReasonOverlapsOlderPool,
			fmt.Sprintf("its addresses overlap those of pool %s, created earlier; change spec.addresses so the pools are disjoint", v.OverlapsWith))
	} else {
		set(v1alpha1.PoolOverlapping, false, v1alpha1.ReasonNoOverlap, "no older pool overlaps this one")
	}
	// Older versions set a Deleting condition; nothing sets it any more.
	meta.RemoveStatusCondition(&st.Conditions, legacyPoolDeleting)
	if orphaned > 0 {
		set(v1alpha1.PoolAddressesOutsideRanges, true, v1alpha1.ReasonAddressesOutsideRanges,
			fmt.Sprintf("%d held address(es) are outside spec.addresses (%s): they stay with their Services and are not handed out again",
				orphaned, strings.Join(in.Outside, ", ")))
	} else {
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.PoolAddressesOutsideRanges)
	}
	return st
}

// PoolStatusEqual reports whether two pool statuses are the same.
func PoolStatusEqual(a, b v1alpha1.IPPoolStatus) bool { return equality.Semantic.DeepEqual(a, b) }

// StatusPatch is the strategic merge patch that makes a Service's status
// show desired. It replaces status.loadBalancer.ingress, merges bgplb's
// condition by type (other controllers' conditions stay), and carries the
// resourceVersion the decision was based on, so a decision made on a stale
// view of the Service fails with a conflict instead of overwriting a newer
// status (e.g. one written by a previous instance just before it died).
// The body is built by patch.StatusBody.
func StatusPatch(resourceVersion string, desired ServiceStatus, hadCondition bool) ([]byte, error) {
	status := map[string]any{
		"loadBalancer": map[string]any{"ingress": desired.Ingress},
	}
	switch {
	case desired.Condition != nil:
		status["conditions"] = []any{desired.Condition}
	case hadCondition:
		status["conditions"] = []any{map[string]any{"type": v1alpha1.ConditionAddressAllocated, "$patch": "delete"}}
	}
	b, err := patch.StatusBody(resourceVersion, status)
	if err != nil {
		return nil, fmt.Errorf("the Service status patch: %w", err)
	}
	return b, nil
}

// SameStatusIgnoringTime is StatusEqual without LastTransitionTime.
func SameStatusIgnoringTime(a, b ServiceStatus) bool {
	if a.Condition != nil && b.Condition != nil {
		ac, bc := *a.Condition, *b.Condition
		ac.LastTransitionTime, bc.LastTransitionTime = metav1.Time{}, metav1.Time{}
		a.Condition, b.Condition = &ac, &bc
	}
	return StatusEqual(a, b)
}
