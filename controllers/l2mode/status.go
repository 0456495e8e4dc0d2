package l2mode

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bgplb/bgplb/controllers/internal/patch"
	"github.com/bgplb/bgplb/internal/l2election"
)

// ConditionL2Announced is the Service condition that says which node
// answers ARP/NDP for each of its addresses.
const ConditionL2Announced = "bgplb.io/L2Announced"

// Reasons of the condition and of the events.
const (
	ReasonAnnounced    = "Announced"
	ReasonNoEligible   = "NoEligibleNode"
	ReasonOwnerChanged = "L2OwnerChanged"
)

// serviceSummary is the condition's status, reason and message for one
// Service: "198.51.100.200 on node-2 (eth0); 2001:db8:100::200 on node-2 (eth0)",
// in address order. Every speaker computes the same text from the same
// owners, so whichever writes it writes the same.
func serviceSummary(addrs []netip.Addr, owners map[netip.Addr]l2election.Owner) (status bool, reason, message string) {
	addrs = slices.Clone(addrs)
	slices.SortFunc(addrs, netip.Addr.Compare)
	parts := make([]string, 0, len(addrs))
	status = true
	for _, ip := range addrs {
		o := owners[ip]
		if o.Node == "" {
			status = false
			parts = append(parts, fmt.Sprintf("%s on no node (none is eligible)", ip))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s on %s (%s)", ip, o.Node, strings.Join(o.Interfaces, ",")))
	}
	reason = ReasonAnnounced
	if !status {
		reason = ReasonNoEligible
	}
	return status, reason, strings.Join(parts, "; ")
}

// addressesByService inverts Desired.Services.
func addressesByService(svcs map[netip.Addr][]types.NamespacedName) map[types.NamespacedName][]netip.Addr {
	out := map[types.NamespacedName][]netip.Addr{}
	for ip, keys := range svcs {
		for _, k := range keys {
			out[k] = append(out[k], ip)
		}
	}
	return out
}

// writerOf is the node that writes a Service's condition: the owner of its
// lowest address that has one, else (no node is eligible for any of them)
// fallback. Exactly one node writes each change (the one all speakers
// agree on), and only when the text differs.
func writerOf(addrs []netip.Addr, owners map[netip.Addr]l2election.Owner, fallback string) string {
	addrs = slices.Clone(addrs)
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, ip := range addrs {
		if n := owners[ip].Node; n != "" {
			return n
		}
	}
	return fallback
}

// fallbackWriter is the first selected node, by name, that is Ready and
// alive: it reports Services no node is eligible for. When no
// L2Advertisement selects any node, no speaker hears the others, so it is
// the first Ready node by name (every speaker agrees from the Nodes
// alone); else a Service whose advertisement stopped selecting nodes
// would keep naming its old owner.
func fallbackWriter(d Desired) string {
	for _, name := range d.Selected {
		if n := d.Nodes[name]; n.Ready && n.Alive {
			return name
		}
	}
	if len(d.Selected) > 0 {
		return ""
	}
	names := slices.Sorted(maps.Keys(d.Nodes))
	for _, name := range names {
		if d.Nodes[name].Ready {
			return name
		}
	}
	return ""
}

// writeStatus sets the bgplb.io/L2Announced condition of the Services
// whose text changed, if this node is their writer (writerOf), and
// records an event for each. Bounded: one write per Service per owner
// change, by one node; none while nothing changes.
func (r *Reconciler) writeStatus(ctx context.Context, svcs map[types.NamespacedName]*corev1.Service, d Desired, owners map[netip.Addr]l2election.Owner) {
	for key := range r.written {
		if _, ok := svcs[key]; !ok {
			delete(r.written, key)
		}
	}
	fallback := fallbackWriter(d)
	byService := addressesByService(d.Services)
	if fallback == r.NodeName {
		r.clearStale(ctx, svcs, byService)
	}
	for key, addrs := range byService {
		svc := svcs[key]
		if svc == nil || writerOf(addrs, owners, fallback) != r.NodeName {
			continue
		}
		ok, reason, msg := serviceSummary(addrs, owners)
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		if cur := meta.FindStatusCondition(svc.Status.Conditions, ConditionL2Announced); cur != nil &&
			cur.Message == msg && cur.Status == status && cur.Reason == reason {
			continue
		}
		text := string(status) + "/" + reason + ": " + msg
		if r.written[key] == text && r.alreadyWritten(ctx, key, status, reason, msg) {
			continue // the cache has not seen this node's own write yet
		}
		cond := metav1.Condition{Type: ConditionL2Announced, Status: status, Reason: reason, Message: msg,
			LastTransitionTime: metav1.Now(), ObservedGeneration: svc.Generation}
		if !r.patchCondition(ctx, svc, cond, "L2: "+msg) {
			continue
		}
		if r.written == nil {
			r.written = map[types.NamespacedName]string{}
		}
		r.written[key] = text
	}
}

// patchCondition sets (or, given {"type": ..., "$patch": "delete"},
// removes) the Service's L2 condition with a strategic merge patch, which
// leaves other controllers' conditions alone, and records the event note.
// It reports whether the write happened; failures are logged and counted,
// a Service deleted since the cache saw it is neither.
func (r *Reconciler) patchCondition(ctx context.Context, svc *corev1.Service, cond any, note string) bool {
	p, err := patch.Status(types.StrategicMergePatchType, "", map[string]any{"conditions": []any{cond}})
	if err == nil {
		target := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name}}
		err = r.Writer.Status().Patch(ctx, target, p)
	}
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		statusWrites.WithLabelValues("error").Inc()
		logf.FromContext(ctx).Error(err, "writing the L2 condition", "service", client.ObjectKeyFromObject(svc))
		return false
	}
	statusWrites.WithLabelValues("success").Inc()
	if r.Recorder != nil {
		r.Recorder.Eventf(svc, nil, corev1.EventTypeNormal, ReasonOwnerChanged, "AnnounceL2", "%s (written by %s)", note, r.NodeName)
	}
	return true
}

// alreadyWritten reads the Service past the cache: whether its condition
// already says this (the cache lags behind this node's last write, which
// would otherwise be written, with its event, a second time).
func (r *Reconciler) alreadyWritten(ctx context.Context, key types.NamespacedName, status metav1.ConditionStatus, reason, msg string) bool {
	if r.APIReader == nil {
		return false
	}
	var svc corev1.Service
	if err := r.APIReader.Get(ctx, key, &svc); err != nil {
		return false
	}
	cur := meta.FindStatusCondition(svc.Status.Conditions, ConditionL2Announced)
	return cur != nil && cur.Status == status && cur.Reason == reason && cur.Message == msg
}

// clearStale removes the bgplb.io/L2Announced condition from Services that
// are no longer announced in L2 (their pool no longer selected, every
// L2Advertisement deleted, no address any more), so the condition never
// names an owner that stopped answering. The fallback writer does it: a
// node every speaker agrees on, also when no L2Advertisement selects any.
func (r *Reconciler) clearStale(ctx context.Context, svcs map[types.NamespacedName]*corev1.Service, announced map[types.NamespacedName][]netip.Addr) {
	for _, key := range staleL2(svcs, announced) {
		del := map[string]any{"type": ConditionL2Announced, "$patch": "delete"}
		if r.patchCondition(ctx, svcs[key], del, "L2: not announced any more (no L2Advertisement selects its address)") {
			delete(r.written, key)
		}
	}
}

// staleL2 lists, sorted, the Services that show the L2 condition but are
// not announced in L2. A nil Service (an IPAllocation names it, the cache
// has no such Service: deleted, or not a LoadBalancer any more) has
// nothing to clear.
func staleL2(svcs map[types.NamespacedName]*corev1.Service, announced map[types.NamespacedName][]netip.Addr) []types.NamespacedName {
	var out []types.NamespacedName
	for key, svc := range svcs {
		if _, ok := announced[key]; ok || svc == nil || meta.FindStatusCondition(svc.Status.Conditions, ConditionL2Announced) == nil {
			continue
		}
		out = append(out, key)
	}
	slices.SortFunc(out, func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	return out
}
