package speaker

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

// GracefulShutdownCommunity is the well-known GRACEFUL_SHUTDOWN community
// (RFC 8326, 65535:0) a draining node attaches to its routes so that routers
// move traffic away before the routes are withdrawn.
const GracefulShutdownCommunity uint32 = 0xFFFF0000

// Inputs is everything that decides one node's BGP state. The reconciler
// gathers it from its cache; Compute turns it into the desired state without
// any I/O, so that every rule below is table-tested.
type Inputs struct {
	// Node is this speaker's node (labels and addresses).
	Node *corev1.Node
	// Peers are all BGPPeers; Compute picks those whose nodeSelector selects Node.
	Peers []v1alpha1.BGPPeer
	// Advertisements are all BGPAdvertisements.
	Advertisements []v1alpha1.BGPAdvertisement
	// Pools are all IPPools, by name (for ipPoolSelector).
	Pools map[string]*v1alpha1.IPPool
	// Allocations are all IPAllocations: the only source of addresses to
	// announce (invariant 3). Like every object here they may be the
	// cache's own: Compute never modifies them.
	Allocations []*v1alpha1.IPAllocation
	// Services referenced by the allocations, by namespace/name.
	Services map[types.NamespacedName]*corev1.Service
	// EndpointSlices of those Services, by the Service's namespace/name.
	EndpointSlices map[types.NamespacedName][]*discoveryv1.EndpointSlice
	// Secrets in the install namespace, by name (BGP passwords).
	Secrets map[string]*corev1.Secret
	// PreviousASN is the global ASN applied last (0 if none). It is kept
	// while a selected peer still uses it, because changing the global ASN
	// restarts the BGP server and so every session.
	PreviousASN uint32
	// DrainSince is when the node got the exclusion label (zero when it has
	// none); see NextDrainSince.
	DrainSince time.Time
	// DrainTime is how long a node excluded from load balancers keeps its
	// routes announced with GRACEFUL_SHUTDOWN before withdrawing them.
	DrainTime time.Duration
	// Now is the time the decision is made for.
	Now time.Time
}

// DrainPhase says where a node is in its graceful withdrawal.
type DrainPhase string

// Drain phases.
const (
	// DrainNone: the node is not excluded; routes are announced normally.
	DrainNone DrainPhase = ""
	// DrainGracefulShutdown: the node is excluded and within its drain time;
	// routes are announced with GRACEFUL_SHUTDOWN.
	DrainGracefulShutdown DrainPhase = "GracefulShutdown"
	// DrainWithdrawn: the drain time is over; no route is announced.
	DrainWithdrawn DrainPhase = "Withdrawn"
)

// PeerIntent is one BGPPeer that selects the node. When Problem is set the
// peer could not be configured (e.g. its password Secret is missing) and is
// left out of the BGP state; its session is reported as down with Problem
// as the error.
type PeerIntent struct {
	Name    string
	Address string
	Problem *Problem
}

// Problem is something about a user's object that only the cluster can
// judge; it becomes a condition and an event.
type Problem struct {
	// Kind and Name of the object at fault ("BGPPeer", "BGPAdvertisement").
	Kind, Name string
	// Reason is a CamelCase reason for conditions and events.
	Reason string
	// Message explains it to the user.
	Message string
}

func (p Problem) String() string { return p.Kind + "/" + p.Name + ": " + p.Reason + ": " + p.Message }

// Desired is the outcome of Compute.
type Desired struct {
	// State is what the bgp package should apply. State.ASN is 0 when no
	// peer selects the node and none ever did: there is nothing to run.
	State bgp.State
	// Peers are the BGPPeers selecting the node, sorted by name, including
	// those left out because of a problem.
	Peers []PeerIntent
	// Problems found with BGPPeers and BGPAdvertisements, sorted.
	Problems []Problem
	// Phase is the node's drain phase; DrainSince is when the drain started.
	Phase      DrainPhase
	DrainSince time.Time
	// RequeueAfter is when the decision changes by itself (end of the drain
	// time); 0 when it does not.
	RequeueAfter time.Duration
}

// NextDrainSince returns when the current drain started: zero when the node
// is not excluded; otherwise the remembered start, else the start persisted
// in the node's status by a previous run of the speaker (so a restart does
// not restart the drain), else now.
func NextDrainSince(excluded bool, remembered, persisted, now time.Time) time.Time {
	switch {
	case !excluded:
		return time.Time{}
	case !remembered.IsZero():
		return remembered
	case !persisted.IsZero() && !persisted.After(now):
		return persisted
	}
	return now
}

// Excluded reports whether the node carries the label that excludes it from
// external load balancers.
func Excluded(node *corev1.Node) bool {
	if node == nil {
		return false
	}
	_, ok := node.Labels[corev1.LabelNodeExcludeBalancers]
	return ok
}

// drainPhase decides the phase and, during the graceful shutdown, how long
// until it ends.
func drainPhase(excluded bool, since time.Time, drain time.Duration, now time.Time) (DrainPhase, time.Duration) {
	if !excluded {
		return DrainNone, 0
	}
	if since.IsZero() {
		since = now
	}
	if left := since.Add(drain).Sub(now); left > 0 {
		return DrainGracefulShutdown, left
	}
	return DrainWithdrawn, 0
}

// RouterID picks the node's BGP identifier: its IPv4 InternalIP, else any
// IPv4 address of the node (ExternalIP, ...), else, on IPv6-only nodes, a
// stable 32-bit value derived from the node name (BGP identifiers are only
// 32-bit numbers that must differ between the speakers a router sees; GoBGP
// insists on the IPv4 notation).
func RouterID(node *corev1.Node) netip.Addr {
	var fallback netip.Addr
	if node != nil {
		for _, a := range node.Status.Addresses {
			ip, err := netip.ParseAddr(a.Address)
			if err != nil || !ip.Unmap().Is4() || ip.IsUnspecified() {
				continue
			}
			ip = ip.Unmap()
			if a.Type == corev1.NodeInternalIP {
				return ip
			}
			if !fallback.IsValid() {
				fallback = ip
			}
		}
	}
	if fallback.IsValid() {
		return fallback
	}
	h := fnv.New32a()
	if node != nil {
		h.Write([]byte(node.Name))
	}
	v := h.Sum32()
	if v == 0 || v == 0xFFFFFFFF {
		v = 1
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// selects reports whether a (possibly nil) label selector selects the
// labels. nil selects everything; an invalid selector selects nothing.
func selects(sel *metav1.LabelSelector, lbls map[string]string) (bool, error) {
	if sel == nil {
		return true, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(lbls)), nil
}

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

func (a *advertisement) selectsPool(name string, pools map[string]*v1alpha1.IPPool) bool {
	if a.pools == nil && a.poolSel == nil {
		return true
	}
	if a.pools[name] {
		return true
	}
	if a.poolSel != nil {
		if p := pools[name]; p != nil && a.poolSel.Matches(labels.Set(p.Labels)) {
			return true
		}
	}
	return false
}

// Compute decides the node's desired BGP state. The rules:
//   - Peers: every BGPPeer whose nodeSelector selects the node, unless its
//     configuration cannot be completed (password Secret or key missing,
//     address taken by another peer): then it is reported as a Problem and
//     left out. Each peer gets its own localASN; the global ASN stays the
//     previous one while a peer uses it, else it is the first peer's.
//   - An address is announced only when an IPAllocation lists a Service
//     holding it (invariant 3) and at least one of its Services (several
//     when shared) wants it: the Service still exists with the recorded
//     UID, is of type LoadBalancer and of bgplb's class (or none), is not
//     being deleted, and has a usable endpoint: ready, or serving while
//     terminating (kube-proxy still sends traffic to those). With
//     externalTrafficPolicy Local the endpoint must be on this node.
//   - It is announced through every BGPAdvertisement that selects this
//     node and the allocation's pool, to the advertisement's peers (all
//     selected peers when it names none) of the address's family, as the
//     covering prefix of the advertisement's aggregation length. When
//     several advertisements reach one peer with one prefix, their
//     communities are merged and the highest local preference wins.
//   - A node labelled node.kubernetes.io/exclude-from-external-load-balancers
//     adds GRACEFUL_SHUTDOWN to every route for the drain time, then
//     withdraws every route; sessions stay up.
func Compute(in Inputs) Desired {
	var out Desired
	node := in.Node
	var nodeLabels map[string]string
	if node != nil {
		nodeLabels = node.Labels
	}

	// Peers selecting the node.
	peers := slices.Clone(in.Peers)
	slices.SortFunc(peers, func(a, b v1alpha1.BGPPeer) int { return cmp.Compare(a.Name, b.Name) })
	active := make(map[string]*bgp.Peer)
	var activeOrder []string
	addrOwner := make(map[netip.Addr]string)
	for i := range peers {
		p := &peers[i]
		ok, err := selects(p.Spec.NodeSelector, nodeLabels)
		if err != nil {
			out.Problems = append(out.Problems, Problem{Kind: "BGPPeer", Name: p.Name, Reason: "InvalidNodeSelector", Message: err.Error()})
			continue
		}
		if !ok || node == nil {
			continue
		}
		intent := PeerIntent{Name: p.Name, Address: p.Spec.Address}
		bp, prob := peerConfig(p, in.Secrets)
		if prob == nil {
			if owner, taken := addrOwner[bp.Address]; taken {
				prob = &Problem{Kind: "BGPPeer", Name: p.Name, Reason: "DuplicateAddress",
					Message: fmt.Sprintf("address %s is already used by BGPPeer %s; only one session per router address is possible", bp.Address, owner)}
			}
		}
		if prob != nil {
			intent.Problem = prob
			out.Problems = append(out.Problems, *prob)
		} else {
			addrOwner[bp.Address] = p.Name
			active[p.Name] = &bp
			activeOrder = append(activeOrder, p.Name)
		}
		out.Peers = append(out.Peers, intent)
	}

	// Drain.
	out.DrainSince = in.DrainSince
	if Excluded(node) && out.DrainSince.IsZero() {
		out.DrainSince = in.Now
	}
	out.Phase, out.RequeueAfter = drainPhase(Excluded(node), out.DrainSince, in.DrainTime, in.Now)

	// Advertisements that apply to this node.
	advs := slices.Clone(in.Advertisements)
	slices.SortFunc(advs, func(a, b v1alpha1.BGPAdvertisement) int { return cmp.Compare(a.Name, b.Name) })
	var applicable []*advertisement
	for i := range advs {
		a, prob := parseAdvertisement(&advs[i], nodeLabels, active, activeOrder)
		if prob != nil {
			out.Problems = append(out.Problems, *prob)
			continue
		}
		if a == nil || node == nil {
			continue
		}
		if out.Phase == DrainGracefulShutdown {
			a.attrs.Communities = append(slices.Clone(a.attrs.Communities), GracefulShutdownCommunity)
		}
		applicable = append(applicable, a)
		for _, peer := range a.peers {
			bp := active[peer]
			bp.Profiles = append(bp.Profiles, a.attrs)
		}
	}

	// Addresses to announce. What an address gets depends only on its pool
	// and family, so it is worked out once per (pool, family), and every
	// path of that kind shares the same read-only map of peer attributes:
	// at 10,000 Services, one map per path was most of Compute's time and
	// memory. A prefix reached twice (aggregation) gets a map of its own.
	paths := make(map[netip.Prefix]map[string]bgp.Attributes)
	if out.Phase != DrainWithdrawn && len(applicable) > 0 {
		groups := make(map[poolFamily][]announceGroup)
		owned := make(map[netip.Prefix]bool)
		for _, alloc := range in.Allocations {
			addr, err := netip.ParseAddr(alloc.Spec.Address)
			if err != nil {
				continue // the API server validates it; nothing sensible to announce
			}
			addr = addr.Unmap()
			if !anyServiceWants(alloc, in, nodeNameOf(node)) {
				continue
			}
			key := poolFamily{pool: alloc.Spec.Pool, v4: addr.Is4()}
			gs, ok := groups[key]
			if !ok {
				gs = announceGroups(applicable, active, key, in.Pools)
				groups[key] = gs
			}
			for _, g := range gs {
				prefix, err := addr.Prefix(g.bits)
				if err != nil {
					continue
				}
				cur, ok := paths[prefix]
				if !ok {
					paths[prefix] = g.peers
					continue
				}
				if !owned[prefix] {
					cur = maps.Clone(cur)
					paths[prefix], owned[prefix] = cur, true
				}
				for peer, attrs := range g.peers {
					if c, ok := cur[peer]; ok {
						cur[peer] = mergeAttributes(c, attrs)
					} else {
						cur[peer] = attrs
					}
				}
			}
		}
	}

	// BGP state.
	for _, name := range activeOrder {
		out.State.Peers = append(out.State.Peers, *active[name])
	}
	out.State.ASN = in.PreviousASN
	if len(activeOrder) > 0 {
		keep := false
		for _, name := range activeOrder {
			if active[name].LocalASN == in.PreviousASN {
				keep = true
				break
			}
		}
		if !keep {
			out.State.ASN = active[activeOrder[0]].LocalASN
		}
	}
	if out.State.ASN != 0 {
		out.State.RouterID = RouterID(node)
	}
	out.State.Paths = make([]bgp.Path, 0, len(paths))
	for prefix, m := range paths {
		out.State.Paths = append(out.State.Paths, bgp.Path{Prefix: prefix, Peers: m})
	}
	slices.SortFunc(out.State.Paths, func(a, b bgp.Path) int { return comparePrefix(a.Prefix, b.Prefix) })
	slices.SortFunc(out.Problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Message, b.Message))
	})
	out.Problems = slices.Compact(out.Problems)
	return out
}

// poolFamily is what decides how an address is announced.
type poolFamily struct {
	pool string
	v4   bool
}

// announceGroup is what the addresses of one pool and family get at one
// prefix length: the attributes towards each peer.
type announceGroup struct {
	bits  int
	peers map[string]bgp.Attributes
}

// announceGroups works out, for the addresses of one pool and family, the
// attributes every applicable advertisement selecting the pool gives them
// towards its peers of that family, merged per prefix length (advertisements
// in name order; several reaching one peer merge their attributes).
func announceGroups(applicable []*advertisement, active map[string]*bgp.Peer, key poolFamily, pools map[string]*v1alpha1.IPPool) []announceGroup {
	var out []announceGroup
	for _, a := range applicable {
		if !a.selectsPool(key.pool, pools) {
			continue
		}
		bits := a.aggLenV6
		if key.v4 {
			bits = a.aggLenV4
		}
		i := slices.IndexFunc(out, func(g announceGroup) bool { return g.bits == bits })
		for _, peer := range a.peers {
			if active[peer].Address.Is4() != key.v4 {
				continue // IPv4 routes go to IPv4 sessions, IPv6 to IPv6
			}
			if i < 0 {
				out = append(out, announceGroup{bits: bits, peers: make(map[string]bgp.Attributes)})
				i = len(out) - 1
			}
			m := out[i].peers
			if cur, ok := m[peer]; ok {
				m[peer] = mergeAttributes(cur, a.attrs)
			} else {
				m[peer] = a.attrs
			}
		}
	}
	return out
}

func nodeNameOf(n *corev1.Node) string {
	if n == nil {
		return ""
	}
	return n.Name
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// parseAdvertisement returns the advertisement if it applies to this node
// (nil if not) or the problem that makes it unusable. An advertisement with
// an attribute that cannot be honoured is left out entirely rather than
// announced without it: a missing no-export could leak routes.
func parseAdvertisement(adv *v1alpha1.BGPAdvertisement, nodeLabels map[string]string, active map[string]*bgp.Peer, activeOrder []string) (*advertisement, *Problem) {
	bad := func(reason, format string, args ...any) *Problem {
		return &Problem{Kind: "BGPAdvertisement", Name: adv.Name, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	spec := &adv.Spec
	ok, err := selects(spec.NodeSelector, nodeLabels)
	if err != nil {
		return nil, bad("InvalidNodeSelector", "nodeSelector: %v", err)
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
			return nil, bad("InvalidIPPoolSelector", "ipPoolSelector: %v", err)
		}
		a.poolSel = s
		if a.pools == nil {
			a.pools = map[string]bool{}
		}
	}
	for _, c := range spec.Communities {
		v, err := bgp.ParseCommunity(string(c))
		if err != nil {
			return nil, bad("InvalidCommunity", "%v", err)
		}
		a.attrs.Communities = append(a.attrs.Communities, v)
	}
	for _, c := range spec.LargeCommunities {
		v, err := bgp.ParseLargeCommunity(string(c))
		if err != nil {
			return nil, bad("InvalidLargeCommunity", "%v", err)
		}
		a.attrs.LargeCommunities = append(a.attrs.LargeCommunities, v)
	}
	if spec.LocalPref != nil {
		lp := *spec.LocalPref
		if lp <= 0 || lp > 0xFFFFFFFF {
			return nil, bad("UnsupportedLocalPref", "localPref %d is not supported (use 1 to 4294967295)", lp)
		}
		v := uint32(lp)
		a.attrs.LocalPref = &v
	}
	if spec.AggregationLength != nil {
		if l := *spec.AggregationLength; l < 0 || l > 32 {
			return nil, bad("InvalidAggregationLength", "aggregationLength %d is not between 0 and 32", l)
		}
		a.aggLenV4 = int(*spec.AggregationLength)
	}
	if spec.AggregationLengthV6 != nil {
		if l := *spec.AggregationLengthV6; l < 0 || l > 128 {
			return nil, bad("InvalidAggregationLength", "aggregationLengthV6 %d is not between 0 and 128", l)
		}
		a.aggLenV6 = int(*spec.AggregationLengthV6)
	}
	if len(spec.Peers) == 0 {
		a.peers = slices.Clone(activeOrder)
	} else {
		for _, p := range spec.Peers {
			if active[p] != nil {
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

// anyServiceWants reports whether one of the Services of an allocation
// (several when the address is shared) wants it announced from this node.
func anyServiceWants(alloc *v1alpha1.IPAllocation, in Inputs, nodeName string) bool {
	for _, ref := range alloc.Spec.Services {
		key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
		svc := in.Services[key]
		if !serviceQualifies(svc, ref) {
			continue
		}
		local := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
		if hasUsableEndpoint(in.EndpointSlices[key], local, nodeName) {
			return true
		}
	}
	return false
}

// serviceQualifies reports whether the Service is still the one the
// allocation was made for and still wants a bgplb address.
func serviceQualifies(svc *corev1.Service, ref v1alpha1.ServiceReference) bool {
	if svc == nil || svc.DeletionTimestamp != nil {
		return false
	}
	if ref.UID != "" && svc.UID != ref.UID {
		return false // deleted and re-created under the same name
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	return svc.Spec.LoadBalancerClass == nil || *svc.Spec.LoadBalancerClass == v1alpha1.LoadBalancerClass
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
