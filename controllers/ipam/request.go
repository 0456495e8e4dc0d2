package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/allocator"
)

// maxSharingNamespaces bounds the bgplb.io/sharing-namespaces list; a Service
// rarely needs more than a handful.
const maxSharingNamespaces = 64

// maxSharingKeyLen matches IPAllocation's spec.sharingKey limit.
const maxSharingKeyLen = 253

// Request is what a Service asks of the allocator, parsed from its spec and
// annotations.
type Request struct {
	// Addrs holds the requested address of each family, if any.
	Addrs map[allocator.Family]netip.Addr
	// Pool is the pool named by bgplb.io/ip-pool (or its MetalLB alias), if any.
	Pool string
	// SharingKey is bgplb.io/sharing-key (or MetalLB's allow-shared-ip);
	// empty when the Service does not share.
	SharingKey string
	// SharingNamespaces are the other namespaces this Service accepts to share with.
	SharingNamespaces []string
	// AliasConflicts are MetalLB annotations set on the Service but ignored
	// because another annotation for the same thing wins (see
	// ResolveAnnotations); shown in the condition and a Warning event.
	AliasConflicts []string
}

// ParseLoadBalancerIPs parses the bgplb.io/load-balancer-ips annotation: a
// comma-separated list of at most one address per family, e.g.
// "192.0.2.10,2001:db8::10". Whitespace around entries is ignored. Addresses
// come back in canonical form, in the order given.
func ParseLoadBalancerIPs(s string) ([]netip.Addr, error) {
	return parseLoadBalancerIPs(v1alpha1.AnnotationLoadBalancerIPs, s)
}

// parseLoadBalancerIPs parses an address list read from the annotation
// name (bgplb's or a MetalLB alias), naming it in errors.
func parseLoadBalancerIPs(name, s string) ([]netip.Addr, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%s is empty: list one address per family, e.g. 192.0.2.10,2001:db8::10", name)
	}
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return nil, fmt.Errorf("%s lists %d addresses: at most one IPv4 and one IPv6 address", name, len(parts))
	}
	out := make([]netip.Addr, 0, len(parts))
	for _, p := range parts {
		a, err := parseServiceAddr(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, b := range out {
			if allocator.FamilyOf(a) == allocator.FamilyOf(b) {
				return nil, fmt.Errorf("%s: %s and %s are both %s: at most one address per family",
					name, b, a, allocator.FamilyOf(a))
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// parseServiceAddr parses one address a Service may be given.
func parseServiceAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, fmt.Errorf("empty address in the list")
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	switch {
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%q has an IPv6 zone; a Service address has none", s)
	case a.Is4In6():
		return netip.Addr{}, fmt.Errorf("%q is an IPv4-mapped IPv6 address; write the IPv4 form %s", s, a.Unmap())
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a.IsLinkLocalUnicast(), a.IsInterfaceLocalMulticast():
		return netip.Addr{}, fmt.Errorf("%q cannot be a Service address (unspecified, loopback, multicast or link-local)", s)
	}
	return a, nil
}

// ParseSharingNamespaces parses the bgplb.io/sharing-namespaces annotation: a
// comma-separated list of namespace names. Duplicates are dropped; the result
// is sorted.
func ParseSharingNamespaces(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxSharingNamespaces {
		return nil, fmt.Errorf("%s lists %d namespaces, at most %d", v1alpha1.AnnotationSharingNamespaces, len(parts), maxSharingNamespaces)
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		ns := strings.TrimSpace(p)
		if ns == "" {
			return nil, fmt.Errorf("%s has an empty entry", v1alpha1.AnnotationSharingNamespaces)
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("%s: %q is not a namespace name: %s", v1alpha1.AnnotationSharingNamespaces, ns, errs[0])
		}
		out = append(out, ns)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ParseRequest reads what a Service asks for, honouring MetalLB's
// annotations as aliases (the controller's default). An error means the
// request is invalid (InvalidRequest); its message is meant for the user.
func ParseRequest(svc *corev1.Service) (Request, error) {
	return ParseRequestWith(svc, true)
}

// ParseRequestWith is ParseRequest with MetalLB's annotation aliases on or
// off (see ResolveAnnotations). Aliases that are set but lose to another
// annotation are listed in Request.AliasConflicts.
func ParseRequestWith(svc *corev1.Service, aliases bool) (Request, error) {
	req := Request{}
	ann := svc.Annotations
	res := ResolveAnnotations(ann, aliases)
	req.AliasConflicts = res.Conflicts
	lbIPs := res.LoadBalancerIPs
	switch {
	case lbIPs.Set() && svc.Spec.LoadBalancerIP != "":
		return req, fmt.Errorf("both spec.loadBalancerIP and the %s annotation are set; use only the annotation", lbIPs.Name)
	case lbIPs.Set():
		addrs, err := parseLoadBalancerIPs(lbIPs.Name, lbIPs.Value)
		if err != nil {
			return req, err
		}
		req.Addrs = map[allocator.Family]netip.Addr{}
		for _, a := range addrs {
			req.Addrs[allocator.FamilyOf(a)] = a
		}
	case svc.Spec.LoadBalancerIP != "":
		a, err := parseServiceAddr(strings.TrimSpace(svc.Spec.LoadBalancerIP))
		if err != nil {
			return req, fmt.Errorf("spec.loadBalancerIP: %w", err)
		}
		req.Addrs = map[allocator.Family]netip.Addr{allocator.FamilyOf(a): a}
	}
	if p := res.IPPool; p.Set() {
		req.Pool = strings.TrimSpace(p.Value)
		if errs := validation.IsDNS1123Subdomain(req.Pool); len(errs) > 0 {
			return req, fmt.Errorf("%s: %q is not a pool name: %s", p.Name, p.Value, errs[0])
		}
	}
	if k := res.SharingKey; k.Set() {
		req.SharingKey = strings.TrimSpace(k.Value)
		if req.SharingKey == "" || len(req.SharingKey) > maxSharingKeyLen {
			return req, fmt.Errorf("%s must be 1 to %d characters", k.Name, maxSharingKeyLen)
		}
	}
	if s, ok := ann[v1alpha1.AnnotationSharingNamespaces]; ok {
		nss, err := ParseSharingNamespaces(s)
		if err != nil {
			return req, err
		}
		if req.SharingKey == "" && len(nss) > 0 {
			return req, fmt.Errorf("%s needs %s", v1alpha1.AnnotationSharingNamespaces, v1alpha1.AnnotationSharingKey)
		}
		req.SharingNamespaces = nss
	}
	return req, nil
}
