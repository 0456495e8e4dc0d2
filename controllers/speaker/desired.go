package speaker

import (
	"cmp"
	"hash/fnv"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

// Compute's steps live in files by concern: peers.go selects the node's
// BGPPeers, drain.go decides the drain phase, advertisements.go parses the
// BGPAdvertisements, services.go decides which Services want their address
// announced, and paths.go builds the announced paths.

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
	// announce (docs/architecture.md#announce-only-allocated). Like every object here they may be the
	// cache's own: Compute never modifies them.
	Allocations []*v1alpha1.IPAllocation
	// Services referenced by the allocations, by namespace/name.
	Services map[types.NamespacedName]*corev1.Service
	// EndpointSlices of those Services, by the Service's namespace/name.
	EndpointSlices map[types.NamespacedName][]*discoveryv1.EndpointSlice
	// Secrets in the install namespace, by name (BGP passwords).
	Secrets map[string]*corev1.Secret
	// DefaultClass: Services without a loadBalancerClass are bgplb's too
	// (--default-class, the same flag and rule as the controller's).
	DefaultClass bool
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

	// source, when set, answers for Services and EndpointSlices instead
	// of the two maps above (the reconciler's factStore).
	source serviceSource
}

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

	// table holds State.Paths per IPAllocation, for the reconciler to keep
	// up to date one Service at a time (pathTable).
	table *pathTable
}

// Compute decides the node's desired BGP state. The rules:
//   - Peers: every BGPPeer whose nodeSelector selects the node, unless its
//     configuration cannot be completed (password Secret or key missing,
//     address taken by another peer): then it is reported as a Problem and
//     left out. Each peer gets its own localASN; the global ASN stays the
//     previous one while a peer uses it, else it is the first peer's.
//   - An address is announced only when an IPAllocation lists a Service
//     holding it (docs/architecture.md#announce-only-allocated) and at least one of its Services (several
//     when shared) wants it: the Service still exists with the recorded
//     UID, is not being deleted, is of type LoadBalancer and of bgplb's
//     class (or of none, unless DefaultClass is off: ownership.Qualifies,
//     the controller's rule), and has a usable endpoint: ready, or serving
//     while terminating (kube-proxy still sends traffic to those). With
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
	active, intents, peerProblems := selectPeers(in)
	out.Peers = intents
	out.DrainSince, out.Phase, out.RequeueAfter = drain(in)
	applicable, advProblems := applicableAdvertisements(in, active, out.Phase)
	declareProfiles(active, applicable)
	announcing := applicable
	if out.Phase == DrainWithdrawn {
		announcing = nil
	}
	t := newPathTable(nodeNameOf(in.Node), in.DefaultClass, announcing, active, in.Pools)
	src := in.source
	if src == nil {
		src = mapSource{services: in.Services, slices: in.EndpointSlices, nodeName: nodeNameOf(in.Node)}
	}
	for _, a := range in.Allocations {
		t.set(a.Name, a, src)
	}
	out.State = bgpState(in, active, t.flush().upsert)
	out.Problems = sortedProblems(append(peerProblems, advProblems...))
	out.table = t
	return out
}

// bgpState assembles what the bgp package applies: the active peers in name
// order, the global ASN and router ID, and the paths (sorted by prefix).
func bgpState(in Inputs, active activePeers, paths []bgp.Path) bgp.State {
	var st bgp.State
	for _, name := range active.order {
		st.Peers = append(st.Peers, *active.byName[name])
	}
	st.ASN = globalASN(in.PreviousASN, active)
	if st.ASN != 0 {
		st.RouterID = RouterID(in.Node)
	}
	st.Paths = paths
	if st.Paths == nil {
		st.Paths = []bgp.Path{}
	}
	return st
}

// globalASN keeps the previous global ASN while an active peer still uses
// it as its local ASN, because changing it restarts the BGP server and so
// every session; otherwise it is the first active peer's. Without active
// peers it stays the previous one (0 if none ever selected the node).
func globalASN(previous uint32, active activePeers) uint32 {
	if len(active.order) == 0 {
		return previous
	}
	for _, name := range active.order {
		if active.byName[name].LocalASN == previous {
			return previous
		}
	}
	return active.byName[active.order[0]].LocalASN
}

// sortedProblems sorts problems and drops duplicates.
func sortedProblems(problems []Problem) []Problem {
	slices.SortFunc(problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Message, b.Message))
	})
	return slices.Compact(problems)
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
