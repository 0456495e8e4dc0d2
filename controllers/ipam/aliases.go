package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// MetalLB's Service annotations that bgplb honours as aliases of its own
// (controller flag --metallb-annotations, on by default), so Services moved
// over from MetalLB need no edit. MetalLB reads its current metallb.io/
// form first and falls back to the older metallb.universe.tf/ form; so does
// bgplb. MetalLB has no counterpart of bgplb.io/sharing-namespaces.
const (
	MetalLBAnnotationLoadBalancerIPs       = "metallb.io/loadBalancerIPs"
	MetalLBAnnotationAddressPool           = "metallb.io/address-pool"
	MetalLBAnnotationAllowSharedIP         = "metallb.io/allow-shared-ip"
	MetalLBLegacyAnnotationLoadBalancerIPs = "metallb.universe.tf/loadBalancerIPs"
	MetalLBLegacyAnnotationAddressPool     = "metallb.universe.tf/address-pool"
	MetalLBLegacyAnnotationAllowSharedIP   = "metallb.universe.tf/allow-shared-ip"
)

// annotationAliases lists, for each bgplb annotation that has aliases, the
// aliases in the order they are read when bgplb's own is absent.
var annotationAliases = []struct {
	ours    string
	aliases []string
	// same compares two values the way the controller would read them.
	same func(a, b string) bool
}{
	{v1alpha1.AnnotationLoadBalancerIPs,
		[]string{MetalLBAnnotationLoadBalancerIPs, MetalLBLegacyAnnotationLoadBalancerIPs}, sameAddrList},
	{v1alpha1.AnnotationIPPool,
		[]string{MetalLBAnnotationAddressPool, MetalLBLegacyAnnotationAddressPool}, sameTrimmed},
	{v1alpha1.AnnotationSharingKey,
		[]string{MetalLBAnnotationAllowSharedIP, MetalLBLegacyAnnotationAllowSharedIP}, sameTrimmed},
}

// RequestAnnotations lists every annotation a request is read from: bgplb's
// own and the MetalLB aliases. A change to any of them is a new request.
var RequestAnnotations = func() []string {
	out := []string{v1alpha1.AnnotationSharingNamespaces}
	for _, a := range annotationAliases {
		out = append(out, a.ours)
		out = append(out, a.aliases...)
	}
	return out
}()

// Annotation is one annotation a request value was read from.
type Annotation struct {
	// Name is the annotation's key; empty when none of the candidates is set.
	Name  string
	Value string
}

// Set reports whether the value was given at all.
func (a Annotation) Set() bool { return a.Name != "" }

// ResolvedAnnotations are the request annotations after aliasing: for each
// of bgplb's keys, the annotation that applies.
type ResolvedAnnotations struct {
	LoadBalancerIPs Annotation
	IPPool          Annotation
	SharingKey      Annotation
	// Conflicts are messages for the user, one per alias that is set but
	// ignored because it disagrees with the annotation that wins.
	Conflicts []string
}

// ResolveAnnotations picks, for each of bgplb's request annotations, the
// one that applies. bgplb's own annotation always wins; without it, with
// aliases on, metallb.io/ is read, then metallb.universe.tf/. Every alias
// that is set but disagrees with the winner is reported in Conflicts (in a
// fixed order); an alias that agrees is silently fine. With aliases off,
// MetalLB's annotations are ignored entirely. Pure: no I/O.
func ResolveAnnotations(ann map[string]string, aliases bool) ResolvedAnnotations {
	var out ResolvedAnnotations
	for _, a := range annotationAliases {
		var win Annotation
		if v, ok := ann[a.ours]; ok {
			win = Annotation{a.ours, v}
		}
		if aliases {
			for _, alias := range a.aliases {
				v, ok := ann[alias]
				switch {
				case !ok:
				case !win.Set():
					win = Annotation{alias, v}
				case !a.same(win.Value, v):
					out.Conflicts = append(out.Conflicts, fmt.Sprintf("%s=%q is ignored: %s=%q wins",
						alias, clip(v), win.Name, clip(win.Value)))
				}
			}
		}
		switch a.ours {
		case v1alpha1.AnnotationLoadBalancerIPs:
			out.LoadBalancerIPs = win
		case v1alpha1.AnnotationIPPool:
			out.IPPool = win
		case v1alpha1.AnnotationSharingKey:
			out.SharingKey = win
		}
	}
	return out
}

// sameTrimmed compares values the way pool names and sharing keys are read.
func sameTrimmed(a, b string) bool { return strings.TrimSpace(a) == strings.TrimSpace(b) }

// sameAddrList compares address lists as sets of canonical addresses, so
// "192.0.2.1, 2001:DB8::1" and "2001:db8::1,192.0.2.1" agree. Entries that
// do not parse are compared as trimmed text.
func sameAddrList(a, b string) bool {
	norm := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			p = strings.TrimSpace(p)
			if ad, err := netip.ParseAddr(p); err == nil {
				p = ad.String()
			}
			out = append(out, p)
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(norm(a), norm(b))
}

// clip bounds a user's value quoted in a message (annotations may be long).
func clip(s string) string {
	const maxShown = 64
	if len(s) <= maxShown {
		return s
	}
	return s[:maxShown] + "..."
}
