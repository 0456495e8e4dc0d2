package ipam

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/ownership"
)

// ServiceReconciler gives LoadBalancer Services their addresses. It reads
// from the cache, decides under State's mutex, then writes: IPAllocations
// first (the lock), the Service status next, releases last.
type ServiceReconciler struct {
	*builderState
	client client.Client
	// services reads Services of type LoadBalancer from their own cache;
	// objects read are shared with it and must not be modified.
	services     client.Reader
	apiReader    client.Reader
	recorder     events.EventRecorder
	defaultClass bool
	// metallbAliases: honour MetalLB's Service annotations (see ResolveAnnotations).
	metallbAliases bool
}

// parse reads a Service's request with the controller's alias setting.
func (r *ServiceReconciler) parse(svc *corev1.Service) (Request, error) {
	return ParseRequestWith(svc, r.metallbAliases)
}

// errStale: the status write was based on an older version of the Service.
// The newer one is on its way through the cache; the reconcile is retried
// after staleRetry in case no event brings it.
var errStale = errors.New("the Service changed while being decided")

const staleRetry = 250 * time.Millisecond

// maxLost bounds how often one reconcile retries after losing an address
// to another holder; each loss marks one more address taken, so it ends.
const maxLost = 16

// Reconcile implements reconcile.Reconciler.
func (r *ServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if err := r.ensureBuilt(ctx); err != nil {
		return ctrl.Result{}, err
	}
	start := time.Now()
	svc, err := r.getService(ctx, req.NamespacedName)
	if err != nil {
		return ctrl.Result{}, err
	}
	in := r.input(ctx, req.NamespacedName, svc)
	var d Decision
	for attempt := 0; ; attempt++ {
		d = r.state.Decide(in, r.lookup(ctx))
		if len(d.Verify) > 0 {
			for _, a := range d.Verify {
				if err := r.verify(ctx, a); err != nil {
					return ctrl.Result{}, err
				}
			}
			in.Verified = true
			continue
		}
		if log := ctrl.LoggerFrom(ctx).V(1); log.Enabled() {
			log.Info("decided", "ingress", in.Ingress, "acquire", recordAddrs(d.Acquire), "release", d.Released, "attempt", attempt, "rv", svcRV(svc))
		}
		err := r.acquire(ctx, in, d)
		if errors.Is(err, errLost) && attempt < maxLost {
			continue
		}
		if err != nil {
			return ctrl.Result{}, err
		}
		break
	}
	if svc != nil {
		wrote, err := r.writeStatus(ctx, svc, d)
		if errors.Is(err, errStale) {
			// An expected race (another writer, or our own cache behind):
			// not an error worth a stack trace.
			ctrl.LoggerFrom(ctx).V(1).Info("the Service changed while being decided; deciding again", "reason", err.Error())
			return ctrl.Result{RequeueAfter: staleRetry}, nil
		}
		if err != nil {
			return ctrl.Result{}, err
		}
		if wrote && d.Fresh {
			allocationLatency.Observe(time.Since(start).Seconds())
		}
	}
	for _, rec := range d.Release {
		if err := r.syncRecord(ctx, rec, false); err != nil && !errors.Is(err, errLost) {
			return ctrl.Result{}, err
		}
		r.state.doneReleasing(req.NamespacedName, rec)
	}
	return ctrl.Result{}, nil
}

// acquire writes the IPAllocations a Service is to hold before its status
// shows them. An address the status does not show yet whose object memory
// believes up to date is read back from the API first: another controller
// may have taken it since. errLost: a record went to another Service.
func (r *ServiceReconciler) acquire(ctx context.Context, in ServiceInput, d Decision) error {
	for _, rec := range d.Acquire {
		if err := r.syncRecord(ctx, rec, !slices.Contains(in.Ingress, rec.addr)); err != nil {
			return err
		}
	}
	if !r.state.holdsAll(d.Acquire, in.Key, in.UID) {
		return errLost
	}
	return nil
}

// getService reads a Service from the cache, which holds only type
// LoadBalancer: a Service missing there is deleted or of another type. The
// API is asked (rarely) only when this controller knows the Service, so one
// that changed type still has its status cleaned up.
func (r *ServiceReconciler) getService(ctx context.Context, key types.NamespacedName) (*corev1.Service, error) {
	svc := &corev1.Service{}
	err := r.services.Get(ctx, key, svc)
	if err == nil {
		return svc, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading Service %s: %w", key, err)
	}
	if !r.state.Knows(key) {
		return nil, nil
	}
	if err := r.apiReader.Get(ctx, key, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading Service %s: %w", key, err)
	}
	return svc, nil
}

// input gathers what a decision needs from the Service and the cache.
func (r *ServiceReconciler) input(ctx context.Context, key types.NamespacedName, svc *corev1.Service) ServiceInput {
	in := ServiceInput{Key: key}
	if !ownership.Qualifies(svc, r.defaultClass) {
		return in
	}
	in.Manage, in.UID = true, svc.UID
	in.Families, in.RequireAll = FamilyNeeds(svc)
	in.Req, in.ReqErr = r.parse(svc)
	in.Share = ShareInfoOf(svc, in.Req)
	in.Ingress = IngressAddrs(svc)
	in.SvcLabels = labels.Set(svc.Labels)
	if r.state.NeedsNamespaceLabels() {
		ns := &corev1.Namespace{}
		if err := r.client.Get(ctx, types.NamespacedName{Name: key.Namespace}, ns); err == nil {
			in.NSLabels = labels.Set(ns.Labels)
		}
	}
	return in
}

// lookup reads another Service's sharing facts from the cache.
func (r *ServiceReconciler) lookup(ctx context.Context) ShareLookup {
	return func(k svcKey) (ShareInfo, bool) {
		svc := &corev1.Service{}
		if err := r.services.Get(ctx, k, svc); err != nil || !ownership.Qualifies(svc, r.defaultClass) {
			return ShareInfo{}, false
		}
		req, err := r.parse(svc)
		if err != nil {
			return ShareInfo{}, false
		}
		return ShareInfoOf(svc, req), true
	}
}

// writeStatus patches the Service status if it differs from the decision,
// and records an event for the change. It reports whether it wrote.
func (r *ServiceReconciler) writeStatus(ctx context.Context, svc *corev1.Service, d Decision) (bool, error) {
	key := client.ObjectKeyFromObject(svc)
	cur := CurrentStatus(svc)
	desired := DesiredStatus(cur, d.Outcome, d.Released, svc.Generation, metav1.Now())
	for _, in := range cur.Ingress {
		// Addresses another Service holds stay visible with the conflict.
		if a, err := netip.ParseAddr(in.IP); err == nil && slices.Contains(d.Foreign, a.Unmap()) {
			desired.Ingress = append(desired.Ingress, in)
		}
	}
	if StatusEqual(cur, desired) {
		return false, nil
	}
	if m, ok := r.state.memoOf(key); ok && m.base == svc.ResourceVersion && SameStatusIgnoringTime(m.st, desired) {
		return false, nil // written already; the cache has not caught up
	}
	patch, err := StatusPatch(svc.ResourceVersion, desired, cur.Condition != nil)
	if err != nil {
		return false, err
	}
	out := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name}}
	if err := r.client.Status().Patch(ctx, out, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			// Decided on a stale Service: the newer version is on its way
			// through the cache and will be reconciled again.
			return false, fmt.Errorf("%w: %w", errStale, err)
		}
		return false, fmt.Errorf("patching status of Service %s: %w", key, err)
	}
	ctrl.LoggerFrom(ctx).V(1).Info("wrote Service status", "ingress", desired.Ingress, "base", svc.ResourceVersion)
	r.state.setMemo(key, statusMemo{base: svc.ResourceVersion, st: desired})
	r.event(svc, cur, desired, d)
	return true, nil
}

// event records what changed for the user.
func (r *ServiceReconciler) event(svc *corev1.Service, cur, desired ServiceStatus, d Decision) {
	if desired.Condition == nil {
		if len(d.Released) > 0 {
			r.recorder.Eventf(svc, nil, corev1.EventTypeNormal, v1alpha1.ReasonReleased, "Release",
				"released %s: the Service is no longer a bgplb LoadBalancer", joinAddrs(d.Released))
		}
		return
	}
	c := desired.Condition
	if len(d.Outcome.AliasConflicts) > 0 {
		// Emitted when the condition changes (it lists the conflicts), so
		// once per new disagreement, not on every reconcile.
		r.recorder.Eventf(svc, nil, corev1.EventTypeWarning, v1alpha1.ReasonAnnotationConflict, "Allocate",
			"conflicting annotations, bgplb's own win: %s", strings.Join(d.Outcome.AliasConflicts, "; "))
	}
	if c.Status == metav1.ConditionTrue {
		kind := corev1.EventTypeNormal
		if c.Reason == v1alpha1.ReasonAddressOutsidePool || c.Reason == v1alpha1.ReasonPoolDeleted {
			// Held, but not as the user set it up: worth a look.
			kind = corev1.EventTypeWarning
		}
		r.recorder.Eventf(svc, nil, kind, c.Reason, "Allocate", "%s", c.Message)
		return
	}
	if cur.Condition == nil || cur.Condition.Reason != c.Reason || cur.Condition.Message != c.Message {
		allocationFailures.WithLabelValues(c.Reason).Inc()
	}
	r.recorder.Eventf(svc, nil, corev1.EventTypeWarning, c.Reason, "Allocate", "%s", c.Message)
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// servicePredicate drops Service events that cannot change a decision:
// Services bgplb never handled, and updates that only echo the status this
// controller wrote.
func (r *ServiceReconciler) servicePredicate() predicate.TypedPredicate[*corev1.Service] {
	relevant := func(svc *corev1.Service) bool {
		return ownership.Qualifies(svc, r.defaultClass) || meta.FindStatusCondition(svc.Status.Conditions, v1alpha1.ConditionAddressAllocated) != nil ||
			r.state.Knows(client.ObjectKeyFromObject(svc))
	}
	return predicate.TypedFuncs[*corev1.Service]{
		CreateFunc: func(e event.TypedCreateEvent[*corev1.Service]) bool { return relevant(e.Object) },
		DeleteFunc: func(e event.TypedDeleteEvent[*corev1.Service]) bool { return relevant(e.Object) },
		UpdateFunc: func(e event.TypedUpdateEvent[*corev1.Service]) bool {
			o, n := e.ObjectOld, e.ObjectNew
			if !relevant(o) && !relevant(n) {
				return false
			}
			if specRelevantChanged(o, n) {
				return true
			}
			cur := CurrentStatus(n)
			if StatusEqual(CurrentStatus(o), cur) {
				return false
			}
			m, ok := r.state.memoOf(client.ObjectKeyFromObject(n))
			return !ok || !StatusEqual(m.st, cur)
		},
	}
}

// specRelevantChanged reports whether anything a decision reads changed.
func specRelevantChanged(o, n *corev1.Service) bool {
	if o.UID != n.UID || o.Spec.Type != n.Spec.Type || o.Spec.LoadBalancerIP != n.Spec.LoadBalancerIP ||
		!ptrEq(o.Spec.LoadBalancerClass, n.Spec.LoadBalancerClass) || !ptrEq(o.Spec.IPFamilyPolicy, n.Spec.IPFamilyPolicy) ||
		!slices.Equal(o.Spec.IPFamilies, n.Spec.IPFamilies) || o.Spec.ExternalTrafficPolicy != n.Spec.ExternalTrafficPolicy ||
		!maps.Equal(o.Spec.Selector, n.Spec.Selector) || !maps.Equal(o.Labels, n.Labels) || len(o.Spec.Ports) != len(n.Spec.Ports) {
		return true
	}
	for i := range o.Spec.Ports {
		if o.Spec.Ports[i].Port != n.Spec.Ports[i].Port || o.Spec.Ports[i].Protocol != n.Spec.Ports[i].Protocol {
			return true
		}
	}
	for _, a := range RequestAnnotations {
		ov, ook := o.Annotations[a]
		nv, nok := n.Annotations[a]
		if ov != nv || ook != nok {
			return true
		}
	}
	return false
}

func ptrEq[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func recordAddrs(recs []*record) []netip.Addr {
	out := make([]netip.Addr, len(recs))
	for i, r := range recs {
		out[i] = r.addr
	}
	return out
}

func svcRV(svc *corev1.Service) string {
	if svc == nil {
		return ""
	}
	return svc.ResourceVersion
}
