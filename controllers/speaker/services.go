package speaker

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/ownership"
)

// serviceSource looks up the Services an allocation names and their
// EndpointSlices: Inputs' maps for Compute, the informers' stores for the
// reconciler's per-Service updates. What it returns is only read.
type serviceSource interface {
	service(key types.NamespacedName) *corev1.Service
	endpointSlices(key types.NamespacedName) []*discoveryv1.EndpointSlice
}

// mapSource is the serviceSource of Inputs.
type mapSource struct {
	services map[types.NamespacedName]*corev1.Service
	slices   map[types.NamespacedName][]*discoveryv1.EndpointSlice
}

func (m mapSource) service(key types.NamespacedName) *corev1.Service { return m.services[key] }

func (m mapSource) endpointSlices(key types.NamespacedName) []*discoveryv1.EndpointSlice {
	return m.slices[key]
}

// anyServiceWants reports whether one of the Services of an allocation
// (several when the address is shared) wants it announced from this node:
// it is still the Service the allocation was made for, bgplb's by the same
// rule the controller applies (ownership.Qualifies with --default-class),
// and has a usable endpoint.
func anyServiceWants(alloc *v1alpha1.IPAllocation, src serviceSource, nodeName string, defaultClass bool) bool {
	for _, ref := range alloc.Spec.Services {
		key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
		svc := src.service(key)
		if !stillHolder(svc, ref) || !ownership.Qualifies(svc, defaultClass) {
			continue
		}
		local := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
		if hasUsableEndpoint(src.endpointSlices(key), local, nodeName) {
			return true
		}
	}
	return false
}

// stillHolder reports whether the Service is still the one the allocation
// was made for: it exists, is not being deleted, and has the recorded UID
// (when one is recorded). Whether bgplb owns it is ownership.Qualifies.
func stillHolder(svc *corev1.Service, ref v1alpha1.ServiceReference) bool {
	if svc == nil || svc.DeletionTimestamp != nil {
		return false
	}
	return ref.UID == "" || svc.UID == ref.UID // else deleted and re-created under the same name
}

// hasUsableEndpoint reports whether the slices hold an endpoint traffic can
// go to (on nodeName when local).
func hasUsableEndpoint(slices []*discoveryv1.EndpointSlice, local bool, nodeName string) bool {
	for _, s := range slices {
		for i := range s.Endpoints {
			ep := &s.Endpoints[i]
			if local && (ep.NodeName == nil || *ep.NodeName != nodeName) {
				continue
			}
			if endpointUsable(ep.Conditions) {
				return true
			}
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
