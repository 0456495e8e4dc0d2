package speaker

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/ownership"
)

// serviceFacts is all the speaker reads of a Service: whether it still
// holds an allocation, whether it is bgplb's, and its traffic policy.
// Keeping only these (see factStore) instead of the Service costs about
// a tenth of the memory at 10,000 Services.
type serviceFacts struct {
	uid      types.UID
	deleting bool
	// ours is ownership.Qualifies without and with --default-class, so
	// that the rule stays in one place and the flag can be applied later.
	ours  [2]bool
	local bool // externalTrafficPolicy: Local
}

// factsOfService extracts the serviceFacts of a Service.
func factsOfService(svc *corev1.Service) serviceFacts {
	return serviceFacts{
		uid:      svc.UID,
		deleting: svc.DeletionTimestamp != nil,
		ours:     [2]bool{ownership.Qualifies(svc, false), ownership.Qualifies(svc, true)},
		local:    svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
	}
}

// qualifies is ownership.Qualifies for the Service the facts were taken of.
func (f serviceFacts) qualifies(defaultClass bool) bool {
	if defaultClass {
		return f.ours[1]
	}
	return f.ours[0]
}

// stillHolder reports whether the Service is still the one the allocation
// was made for: not being deleted, and with the recorded UID (when one is
// recorded; else it was deleted and re-created under the same name).
// Whether bgplb owns it is qualifies.
func (f serviceFacts) stillHolder(ref v1alpha1.ServiceReference) bool {
	return !f.deleting && (ref.UID == "" || f.uid == ref.UID)
}

// endpointFacts says whether a Service's EndpointSlices hold an endpoint
// traffic can go to on this node (here) and anywhere (any).
type endpointFacts struct {
	here, any bool
}

// or merges the facts of two EndpointSlices of one Service.
func (e endpointFacts) or(o endpointFacts) endpointFacts {
	return endpointFacts{here: e.here || o.here, any: e.any || o.any}
}

// factsOfSlice extracts the endpointFacts of one EndpointSlice for the
// node called nodeName.
func factsOfSlice(s *discoveryv1.EndpointSlice, nodeName string) endpointFacts {
	var f endpointFacts
	for i := range s.Endpoints {
		ep := &s.Endpoints[i]
		if !endpointUsable(ep.Conditions) {
			continue
		}
		f.any = true
		if ep.NodeName != nil && *ep.NodeName == nodeName {
			f.here = true
			return f
		}
	}
	return f
}

// serviceSource answers, for the Services an allocation names, what
// anyServiceWants asks: mapSource from Inputs' objects (Compute and its
// tests), factStore from the API server's watches (the reconciler).
type serviceSource interface {
	// service returns the facts of a LoadBalancer Service, false when
	// there is no such Service.
	service(key types.NamespacedName) (serviceFacts, bool)
	// endpoints returns the merged facts of the Service's EndpointSlices.
	endpoints(key types.NamespacedName) endpointFacts
}

// mapSource is the serviceSource of Inputs.
type mapSource struct {
	services map[types.NamespacedName]*corev1.Service
	slices   map[types.NamespacedName][]*discoveryv1.EndpointSlice
	nodeName string
}

func (m mapSource) service(key types.NamespacedName) (serviceFacts, bool) {
	svc := m.services[key]
	if svc == nil {
		return serviceFacts{}, false
	}
	return factsOfService(svc), true
}

func (m mapSource) endpoints(key types.NamespacedName) endpointFacts {
	var f endpointFacts
	for _, s := range m.slices[key] {
		f = f.or(factsOfSlice(s, m.nodeName))
	}
	return f
}

// anyServiceWants reports whether one of the Services of an allocation
// (several when the address is shared) wants it announced from this node:
// it is still the Service the allocation was made for, bgplb's by the same
// rule the controller applies (ownership.Qualifies with --default-class),
// and has a usable endpoint (on this node for externalTrafficPolicy Local).
func anyServiceWants(alloc *v1alpha1.IPAllocation, src serviceSource, defaultClass bool) bool {
	for _, ref := range alloc.Spec.Services {
		key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
		f, ok := src.service(key)
		if !ok || !f.stillHolder(ref) || !f.qualifies(defaultClass) {
			continue
		}
		eps := src.endpoints(key)
		if (f.local && eps.here) || (!f.local && eps.any) {
			return true
		}
	}
	return false
}

// endpointUsable: ready, or still serving while terminating. Per the
// EndpointSlice API a nil ready or serving means true and a nil terminating
// means false.
func endpointUsable(c discoveryv1.EndpointConditions) bool {
	if c.Ready == nil || *c.Ready {
		return true
	}
	serving := c.Serving == nil || *c.Serving
	terminating := c.Terminating != nil && *c.Terminating
	return serving && terminating
}

func nodeNameOf(n *corev1.Node) string {
	if n == nil {
		return ""
	}
	return n.Name
}
