package speaker

import (
	"cmp"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

// advertisement is a BGPAdvertisement that applies to this node, with its
// attributes parsed.
type advertisement struct {
	name     string
	pools    map[string]bool // nil: every pool
	poolSel  labels.Selector // nil: none
	peers    []string        // selected peers it announces to, sorted
	attrs    bgp.Attributes
	aggLenV4 int
	aggLenV6 int
}

// applicableAdvertisements parses the BGPAdvertisements in name order and
// returns those that apply to the node (none without a node), reporting
// the unusable ones. While the node drains with GRACEFUL_SHUTDOWN, each
// also carries that community.
func applicableAdvertisements(in Inputs, active activePeers, phase DrainPhase) ([]*advertisement, []Problem) {
	var nodeLabels map[string]string
	if in.Node != nil {
		nodeLabels = in.Node.Labels
	}
	advs := slices.Clone(in.Advertisements)
	slices.SortFunc(advs, func(a, b v1alpha1.BGPAdvertisement) int { return cmp.Compare(a.Name, b.Name) })
	var applicable []*advertisement
	var problems []Problem
	for i := range advs {
		a, prob := parseAdvertisement(&advs[i], nodeLabels, active)
		if prob != nil {
			problems = append(problems, *prob)
			continue
		}
		if a == nil || in.Node == nil {
			continue
		}
		if phase == DrainGracefulShutdown {
			a.attrs.Communities = append(slices.Clone(a.attrs.Communities), GracefulShutdownCommunity)
		}
		applicable = append(applicable, a)
	}
	return applicable, problems
}

// declareProfiles gives every active peer the attributes of each
// advertisement announcing to it (bgp.Peer.Profiles), so that the first and
// last Service of an advertisement do not change the speaker's policies.
func declareProfiles(active activePeers, applicable []*advertisement) {
	for _, a := range applicable {
		for _, peer := range a.peers {
			bp := active.byName[peer]
			bp.Profiles = append(bp.Profiles, a.attrs)
		}
	}
}

// parseAdvertisement returns the advertisement if it applies to this node
// (nil if not) or the problem that makes it unusable. An advertisement with
// an attribute that cannot be honoured is left out entirely rather than
// announced without it: a missing no-export could leak routes.
func parseAdvertisement(adv *v1alpha1.BGPAdvertisement, nodeLabels map[string]string, active activePeers) (*advertisement, *Problem) {
	bad := func(reason, format string, args ...any) *Problem {
		return &Problem{Kind: "BGPAdvertisement", Name: adv.Name, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	spec := &adv.Spec
	ok, err := selects(spec.NodeSelector, nodeLabels)
	if err != nil {
		return nil, bad(v1alpha1.ReasonInvalidNodeSelector, "nodeSelector: %v", err)
	}
	if !ok {
		return nil, nil
	}
	a := &advertisement{name: adv.Name, aggLenV4: 32, aggLenV6: 128}
	if len(spec.IPPools) > 0 {
		a.pools = make(map[string]bool, len(spec.IPPools))
		for _, p := range spec.IPPools {
			a.pools[p] = true
		}
	}
	if spec.IPPoolSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(spec.IPPoolSelector)
		if err != nil {
			return nil, bad(v1alpha1.ReasonInvalidIPPoolSelector, "ipPoolSelector: %v", err)
		}
		a.poolSel = s
		if a.pools == nil {
			a.pools = map[string]bool{}
		}
	}
	for _, c := range spec.Communities {
		v, err := bgp.ParseCommunity(string(c))
		if err != nil {
			return nil, bad(v1alpha1.ReasonInvalidCommunity, "%v", err)
		}
		a.attrs.Communities = append(a.attrs.Communities, v)
	}
	for _, c := range spec.LargeCommunities {
		v, err := bgp.ParseLargeCommunity(string(c))
		if err != nil {
			return nil, bad(v1alpha1.ReasonInvalidLargeCommunity, "%v", err)
		}
		a.attrs.LargeCommunities = append(a.attrs.LargeCommunities, v)
	}
	if spec.LocalPref != nil {
		lp := *spec.LocalPref
		if lp <= 0 || lp > 0xFFFFFFFF {
			return nil, bad(v1alpha1.ReasonUnsupportedLocalPref, "localPref %d is not supported (use 1 to 4294967295)", lp)
		}
		v := uint32(lp)
		a.attrs.LocalPref = &v
	}
	if spec.AggregationLength != nil {
		if l := *spec.AggregationLength; l < 0 || l > 32 {
			return nil, bad(v1alpha1.ReasonInvalidAggregationLength, "aggregationLength %d is not between 0 and 32", l)
		}
		a.aggLenV4 = int(*spec.AggregationLength)
	}
	if spec.AggregationLengthV6 != nil {
		if l := *spec.AggregationLengthV6; l < 0 || l > 128 {
			return nil, bad(v1alpha1.ReasonInvalidAggregationLength, "aggregationLengthV6 %d is not between 0 and 128", l)
		}
		a.aggLenV6 = int(*spec.AggregationLengthV6)
	}
	if len(spec.Peers) == 0 {
		a.peers = slices.Clone(active.order)
	} else {
		for _, p := range spec.Peers {
			if active.byName[p] != nil {
				a.peers = append(a.peers, p)
			}
		}
		slices.Sort(a.peers)
		a.peers = slices.Compact(a.peers)
	}
	return a, nil
}

// mergeAttributes combines the attributes two advertisements give one
// prefix towards one peer: the union of the communities and the higher
// local preference.
func mergeAttributes(a, b bgp.Attributes) bgp.Attributes {
	var m bgp.Attributes
	m.Communities = append(slices.Clone(a.Communities), b.Communities...)
	slices.Sort(m.Communities)
	m.Communities = slices.Compact(m.Communities)
	m.LargeCommunities = append(slices.Clone(a.LargeCommunities), b.LargeCommunities...)
	slices.SortFunc(m.LargeCommunities, func(x, y bgp.LargeCommunity) int {
		return cmp.Or(cmp.Compare(x.GlobalAdmin, y.GlobalAdmin), cmp.Compare(x.LocalData1, y.LocalData1), cmp.Compare(x.LocalData2, y.LocalData2))
	})
	m.LargeCommunities = slices.Compact(m.LargeCommunities)
	switch {
	case a.LocalPref == nil:
		m.LocalPref = b.LocalPref
	case b.LocalPref == nil || *a.LocalPref >= *b.LocalPref:
		m.LocalPref = a.LocalPref
	default:
		m.LocalPref = b.LocalPref
	}
	if len(m.Communities) == 0 {
		m.Communities = nil
	}
	if len(m.LargeCommunities) == 0 {
		m.LargeCommunities = nil
	}
	return m
}
