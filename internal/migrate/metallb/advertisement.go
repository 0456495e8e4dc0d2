package metallb

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

var (
	standardCommunity = regexp.MustCompile(`^[0-9]{1,5}:[0-9]{1,5}$`)
	largeCommunity    = regexp.MustCompile(`^large:([0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10})$`)
)

// communityAliases maps MetalLB's community alias names to their values.
func communityAliases(cs []Community) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		for _, a := range c.Spec.Communities {
			out[a.Name] = a.Value
		}
	}
	return out
}

func convertAdvertisement(a *BGPAdvertisement, aliases map[string]string) Item {
	it := Item{Comments: []string{"From MetalLB BGPAdvertisement " + source(a.ObjectMeta)}}
	note := func(format string, args ...any) { it.Comments = append(it.Comments, fmt.Sprintf(format, args...)) }
	s := &a.Spec
	out := &v1alpha1.BGPAdvertisement{ObjectMeta: objectMeta(a.ObjectMeta)}
	out.APIVersion, out.Kind = v1alpha1.GroupVersion.String(), "BGPAdvertisement"
	spec := &out.Spec
	spec.IPPools = s.IPAddressPools
	spec.IPPoolSelector = firstSelector(s.IPAddressPoolSelectors, "spec.ipAddressPoolSelectors", "ipPoolSelector",
		"fewer pools are announced than under MetalLB", note)
	spec.Peers = s.Peers
	spec.NodeSelector = firstSelector(s.NodeSelectors, "spec.nodeSelectors", "nodeSelector", "fewer nodes announce than under MetalLB", note)
	spec.AggregationLength = s.AggregationLength
	spec.AggregationLengthV6 = s.AggregationLengthV6
	if s.LocalPref != 0 {
		spec.LocalPref = ptr.To(int64(s.LocalPref))
	}
	if s.AsPathPrepend != 0 {
		note("spec.asPathPrepend %d not mapped: bgplb does not prepend to the AS path", s.AsPathPrepend)
	}
	if len(s.ServiceSelectors) > 0 {
		note("spec.serviceSelectors not mapped: bgplb announces every address of the selected pools; "+
			"to announce only some Services, give them a pool of their own (%d selector(s) dropped, so MORE is announced than under MetalLB)", len(s.ServiceSelectors))
	}
	for _, c := range s.Communities {
		value, via := c, ""
		if v, ok := aliases[c]; ok {
			value, via = v, fmt.Sprintf(" (Community alias %q)", c)
		}
		switch m := largeCommunity.FindStringSubmatch(value); {
		case standardCommunity.MatchString(value):
			spec.Communities = append(spec.Communities, v1alpha1.Community(value))
		case m != nil:
			spec.LargeCommunities = append(spec.LargeCommunities, v1alpha1.LargeCommunity(m[1]))
		default:
			note("spec.communities %q%s not mapped: not AA:NN, large:A:B:C or a known Community alias", c, via)
		}
	}
	it.Object = out
	return it
}

func convertL2Advertisement(a *L2Advertisement) Item {
	it := Item{Comments: []string{"From MetalLB L2Advertisement " + source(a.ObjectMeta)}}
	note := func(format string, args ...any) { it.Comments = append(it.Comments, fmt.Sprintf(format, args...)) }
	s := &a.Spec
	out := &v1alpha1.L2Advertisement{ObjectMeta: objectMeta(a.ObjectMeta)}
	out.APIVersion, out.Kind = v1alpha1.GroupVersion.String(), "L2Advertisement"
	spec := &out.Spec
	spec.IPPools = s.IPAddressPools
	spec.IPPoolSelector = firstSelector(s.IPAddressPoolSelectors, "spec.ipAddressPoolSelectors", "ipPoolSelector",
		"fewer pools are announced than under MetalLB", note)
	spec.NodeSelector = firstSelector(s.NodeSelectors, "spec.nodeSelectors", "nodeSelector", "fewer nodes may answer than under MetalLB", note)
	for _, i := range s.Interfaces {
		spec.Interfaces = append(spec.Interfaces, v1alpha1.InterfaceName(i))
	}
	if len(s.Interfaces) == 0 {
		note("spec.interfaces empty: MetalLB answers on every interface, bgplb on the interface whose subnet holds the address " +
			"(a node without one is not eligible); list the interfaces to answer on others")
	}
	if len(s.ServiceSelectors) > 0 {
		note("spec.serviceSelectors not mapped: bgplb answers for every address of the selected pools; "+
			"to announce only some Services, give them a pool of their own (%d selector(s) dropped, so MORE is announced than under MetalLB)", len(s.ServiceSelectors))
	}
	if len(s.PreferredNodeSelectors) > 0 {
		note("spec.preferredNodeSelectors not mapped: bgplb spreads owners evenly over the eligible nodes (%d preference(s) dropped); "+
			"narrow nodeSelector to keep addresses off some nodes", len(s.PreferredNodeSelectors))
	}
	it.Object = out
	return it
}

// onlyPrintable keeps a user's value readable in a comment line.
func onlyPrintable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
