package metallb

import (
	"fmt"
	"net/netip"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// Item is one piece of the output: comments, then an object (if any).
type Item struct {
	// Comments are printed as "# " lines before the object.
	Comments []string
	// Object is the bgplb object; nil for a comment-only item.
	Object client.Object
	// Disabled: the object cannot work as converted; it is printed
	// commented out, for the user to finish by hand.
	Disabled bool
}

// Result is the converted configuration, in the order to apply it.
type Result struct {
	Items []Item
}

// maxPriority is the largest allocateTo.priority bgplb accepts.
const maxPriority = 1000000

// Convert maps MetalLB's configuration onto bgplb's kinds. It is pure: every
// field that does not map is named in a comment with the reason, and
// objects that cannot work without a decision by the user are emitted
// disabled (commented out). MetalLB's namespaced objects become bgplb's
// cluster-scoped ones of the same name.
func Convert(cfg *Config) Result {
	var res Result
	if len(cfg.Skipped) > 0 {
		res.Items = append(res.Items, Item{Comments: append([]string{"Input not converted:"}, indent(cfg.Skipped)...)})
	}
	seen := map[string]string{} // kind/name -> source, to report clashes
	dup := func(kind string, m metav1.ObjectMeta) bool {
		k := kind + "/" + m.Name
		if src, ok := seen[k]; ok {
			res.Items = append(res.Items, Item{Comments: []string{fmt.Sprintf(
				"MetalLB %s %s not converted: bgplb's %s objects are cluster-scoped and %s already takes the name %q; rename one",
				kind, source(m), kind, src, m.Name)}})
			return true
		}
		seen[k] = source(m)
		return false
	}
	for i := range cfg.Pools {
		if !dup("IPPool", cfg.Pools[i].ObjectMeta) {
			res.Items = append(res.Items, convertPool(&cfg.Pools[i], cfg))
		}
	}
	pc := newPeerContext(cfg)
	for i := range cfg.Peers {
		if !dup("BGPPeer", cfg.Peers[i].ObjectMeta) {
			res.Items = append(res.Items, pc.convert(&cfg.Peers[i])...)
		}
	}
	aliases := communityAliases(cfg.Communities)
	for i := range cfg.BGPAdvertisements {
		if !dup("BGPAdvertisement", cfg.BGPAdvertisements[i].ObjectMeta) {
			res.Items = append(res.Items, convertAdvertisement(&cfg.BGPAdvertisements[i], aliases))
		}
	}
	for _, c := range cfg.Communities {
		res.Items = append(res.Items, Item{Comments: []string{fmt.Sprintf(
			"MetalLB Community %s: bgplb has no community aliases; its values are written out in the BGPAdvertisements that use them", source(c.ObjectMeta))}})
	}
	for _, b := range cfg.BFDProfiles {
		res.Items = append(res.Items, Item{Comments: []string{fmt.Sprintf(
			"MetalLB BFDProfile %s: bgplb has no BFD profiles; its settings are written into the BGPPeers that use it (spec.bfd)", source(b.ObjectMeta))}})
	}
	for i := range cfg.L2Advertisements {
		res.Items = append(res.Items, convertL2Advertisement(&cfg.L2Advertisements[i]))
	}
	return res
}

// source names a MetalLB object in comments.
func source(m metav1.ObjectMeta) string {
	if m.Namespace == "" {
		return m.Name
	}
	return m.Namespace + "/" + m.Name
}

func indent(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "  " + s
	}
	return out
}

// objectMeta is the metadata of a converted object: the same name and labels
// (selectors of pools by label keep working), nothing else.
func objectMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name}
	if len(m.Labels) > 0 {
		out.Labels = m.Labels
	}
	return out
}

func convertPool(p *IPAddressPool, cfg *Config) Item {
	it := Item{Comments: []string{"From MetalLB IPAddressPool " + source(p.ObjectMeta)}}
	note := func(format string, args ...any) { it.Comments = append(it.Comments, fmt.Sprintf(format, args...)) }
	out := &v1alpha1.IPPool{ObjectMeta: objectMeta(p.ObjectMeta)}
	out.APIVersion, out.Kind = v1alpha1.GroupVersion.String(), "IPPool"
	for _, a := range p.Spec.Addresses {
		out.Spec.Addresses = append(out.Spec.Addresses, v1alpha1.AddressRange(poolAddress(a, note)))
	}
	if len(out.Spec.Addresses) > 20 {
		note("spec.addresses: %d entries, bgplb takes at most 20: split the pool in two (admission rejects this one)", len(out.Spec.Addresses))
	}
	out.Spec.AutoAssign = p.Spec.AutoAssign
	out.Spec.AvoidBuggyIPs = p.Spec.AvoidBuggyIPs
	if sa := p.Spec.AllocateTo; sa != nil {
		to := &v1alpha1.AllocateTo{Namespaces: sa.Namespaces}
		switch {
		case sa.Priority == 0:
			// MetalLB tries pools without a priority after those with one;
			// bgplb's default 0 would come first.
			to.Priority = maxPriority
			note("spec.serviceAllocation.priority unset: MetalLB tries such pools after those with a priority; allocateTo.priority %d keeps that order", maxPriority)
		case sa.Priority < 0 || sa.Priority > maxPriority:
			to.Priority = maxPriority
			note("spec.serviceAllocation.priority %d is outside bgplb's 0..%d: set to %d (tried last)", sa.Priority, maxPriority, maxPriority)
		default:
			to.Priority = int32(sa.Priority) //nolint:gosec // bounded above
		}
		to.NamespaceSelector = firstSelector(sa.NamespaceSelectors, "spec.serviceAllocation.namespaceSelectors",
			"allocateTo.namespaceSelector", "this pool now serves fewer namespaces than under MetalLB", note)
		to.ServiceSelector = firstSelector(sa.ServiceSelectors, "spec.serviceAllocation.serviceSelectors",
			"allocateTo.serviceSelector", "this pool now serves fewer Services than under MetalLB", note)
		out.Spec.AllocateTo = to
	}
	it.Object = out
	return it
}

// poolAddress returns a MetalLB pool entry as bgplb writes it: a CIDR with
// host bits set becomes its network (MetalLB reads it that way).
func poolAddress(a string, note func(string, ...any)) string {
	s := strings.TrimSpace(a)
	if !strings.Contains(s, "/") {
		return s
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		note("spec.addresses %q is not a CIDR bgplb can read; copied as is (admission will say why)", a)
		return s
	}
	if m := p.Masked(); m != p {
		note("spec.addresses %q has host bits set: written as %s, the network MetalLB used", a, m)
		return m.String()
	}
	return p.String()
}

// firstSelector maps MetalLB's list of selectors (any one matching) onto
// bgplb's single selector: one maps exactly; of several only the first is
// kept, which narrows (never widens) what is selected.
func firstSelector(sels []metav1.LabelSelector, from, to, narrower string, note func(string, ...any)) *metav1.LabelSelector {
	if len(sels) == 0 {
		return nil
	}
	if len(sels) > 1 {
		note("%s: %d selectors (MetalLB matches any of them); bgplb's %s takes one: only the first is kept, %s; "+
			"put a common label on what they select and use that instead", from, len(sels), to, narrower)
	}
	s := sels[0]
	return &s
}
