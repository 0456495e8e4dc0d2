package ipam

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/allocator"
)

// FamilyNeeds returns the families a Service gets addresses of, primary
// first, and whether it needs all of them (false: at least one, the others
// when a pool allows). SingleStack takes ipFamilies[0]; PreferDualStack both,
// at least one; RequireDualStack both.
func FamilyNeeds(svc *corev1.Service) (fams []allocator.Family, requireAll bool) {
	primary := allocator.IPv4
	if len(svc.Spec.IPFamilies) > 0 && svc.Spec.IPFamilies[0] == corev1.IPv6Protocol {
		primary = allocator.IPv6
	}
	other := allocator.IPv6
	if primary == allocator.IPv6 {
		other = allocator.IPv4
	}
	policy := corev1.IPFamilyPolicySingleStack
	if svc.Spec.IPFamilyPolicy != nil {
		policy = *svc.Spec.IPFamilyPolicy
	}
	switch policy {
	case corev1.IPFamilyPolicyPreferDualStack:
		return []allocator.Family{primary, other}, false
	case corev1.IPFamilyPolicyRequireDualStack:
		return []allocator.Family{primary, other}, true
	default:
		return []allocator.Family{primary}, true
	}
}

// PortProto is one (port, protocol) pair a Service exposes.
type PortProto struct {
	Port     int32
	Protocol corev1.Protocol
}

// ShareInfo is what decides whether two Services may share an address.
type ShareInfo struct {
	Namespace, Name string
	Key             string
	Namespaces      []string // bgplb.io/sharing-namespaces, sorted
	Ports           []PortProto
	Local           bool              // externalTrafficPolicy Local
	Selector        map[string]string // compared when Local
}

// ShareInfoOf extracts a Service's sharing facts; req is its parsed request.
func ShareInfoOf(svc *corev1.Service, req Request) ShareInfo {
	si := ShareInfo{
		Namespace:  svc.Namespace,
		Name:       svc.Name,
		Key:        req.SharingKey,
		Namespaces: req.SharingNamespaces,
		Local:      svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
		Selector:   svc.Spec.Selector,
	}
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		si.Ports = append(si.Ports, PortProto{Port: p.Port, Protocol: proto})
	}
	return si
}

// CanShare returns nil if Services a and b may share one address, else an
// error saying why not, for the user: same non-empty sharing key, no common
// (port, protocol) pair, the same externalTrafficPolicy, equal selectors when
// it is Local (traffic must land on the same endpoints' nodes), and, across
// namespaces, each listing the other's namespace in bgplb.io/sharing-namespaces.
func CanShare(a, b ShareInfo) error {
	if a.Key == "" || b.Key == "" {
		return fmt.Errorf("%s/%s and %s/%s do not both set %s", a.Namespace, a.Name, b.Namespace, b.Name, v1alpha1.AnnotationSharingKey)
	}
	if a.Key != b.Key {
		return fmt.Errorf("%s/%s has sharing key %q, %s/%s has %q", a.Namespace, a.Name, a.Key, b.Namespace, b.Name, b.Key)
	}
	if a.Namespace != b.Namespace {
		if !slices.Contains(a.Namespaces, b.Namespace) || !slices.Contains(b.Namespaces, a.Namespace) {
			return fmt.Errorf("%s/%s and %s/%s are in different namespaces and do not both list each other's namespace in %s",
				a.Namespace, a.Name, b.Namespace, b.Name, v1alpha1.AnnotationSharingNamespaces)
		}
	}
	if a.Local != b.Local {
		return fmt.Errorf("%s/%s and %s/%s have different externalTrafficPolicy", a.Namespace, a.Name, b.Namespace, b.Name)
	}
	if a.Local && !maps.Equal(a.Selector, b.Selector) {
		return fmt.Errorf("%s/%s and %s/%s have externalTrafficPolicy Local but different selectors", a.Namespace, a.Name, b.Namespace, b.Name)
	}
	var clash []string
	for _, pa := range a.Ports {
		for _, pb := range b.Ports {
			if pa == pb {
				clash = append(clash, fmt.Sprintf("%d/%s", pa.Port, pa.Protocol))
			}
		}
	}
	if len(clash) > 0 {
		slices.Sort(clash)
		return fmt.Errorf("%s/%s and %s/%s both use %s", a.Namespace, a.Name, b.Namespace, b.Name, strings.Join(clash, ", "))
	}
	return nil
}
