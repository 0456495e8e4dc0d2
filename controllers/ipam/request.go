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
	// Pool is the pool named by bgplb.io/ip-pool, if any.
	Pool string
	// SharingKey is bgplb.io/sharing-key; empty when the Service does not share.
	SharingKey string
	// SharingNamespaces are the other namespaces this Service accepts to share with.
	SharingNamespaces []string
}

// ParseLoadBalancerIPs parses the bgplb.io/load-balancer-ips annotation: a
// comma-separated list of at most one address per family, e.g.
// "192.0.2.10,2001:db8::10". Whitespace around entries is ignored. Addresses
// come back in canonical form, in the order given.
func ParseLoadBalancerIPs(s string) ([]netip.Addr, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%s is empty: list one address per family, e.g. 192.0.2.10,2001:db8::10",
			v1alpha1.AnnotationLoadBalancerIPs)
	}
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return nil, fmt.Errorf("%s lists %d addresses: at most one IPv4 and one IPv6 address",
			v1alpha1.AnnotationLoadBalancerIPs, len(parts))
	}
	out := make([]netip.Addr, 0, len(parts))
	for _, p := range parts {
		a, err := parseServiceAddr(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v1alpha1.AnnotationLoadBalancerIPs, err)
		}
		for _, b := range out {
			if allocator.FamilyOf(a) == allocator.FamilyOf(b) {
				return nil, fmt.Errorf("%s: %s and %s are both %s: at most one address per family",
					v1alpha1.AnnotationLoadBalancerIPs, b, a, allocator.FamilyOf(a))
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

// ParseRequest reads what a Service asks for. An error means the request is
// invalid (InvalidRequest); its message is meant for the user.
func ParseRequest(svc *corev1.Service) (Request, error) {
	req := Request{}
	ann := svc.Annotations
	lbIPs, hasAnn := ann[v1alpha1.AnnotationLoadBalancerIPs]
	switch {
	case hasAnn && svc.Spec.LoadBalancerIP != "":
		return req, fmt.Errorf("both spec.loadBalancerIP and the %s annotation are set; use only the annotation",
			v1alpha1.AnnotationLoadBalancerIPs)
	case hasAnn:
		addrs, err := ParseLoadBalancerIPs(lbIPs)
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
	if p, ok := ann[v1alpha1.AnnotationIPPool]; ok {
		req.Pool = strings.TrimSpace(p)
		if errs := validation.IsDNS1123Subdomain(req.Pool); len(errs) > 0 {
			return req, fmt.Errorf("%s: %q is not a pool name: %s", v1alpha1.AnnotationIPPool, p, errs[0])
		}
	}
	if k, ok := ann[v1alpha1.AnnotationSharingKey]; ok {
		req.SharingKey = strings.TrimSpace(k)
		if req.SharingKey == "" || len(req.SharingKey) > maxSharingKeyLen {
			return req, fmt.Errorf("%s must be 1 to %d characters", v1alpha1.AnnotationSharingKey, maxSharingKeyLen)
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
