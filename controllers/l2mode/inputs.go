package l2mode

import (
	"encoding/json"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/ownership"
	"github.com/bgplb/bgplb/internal/heartbeat"
	"github.com/bgplb/bgplb/internal/l2election"
	"github.com/bgplb/bgplb/l2"
)

// excludeLabel takes a node out of every load balancer.
const excludeLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// Inputs are what the L2 owners are computed from. Every speaker gathers
// the same cluster objects; Self and Peers are what it sees of the nodes'
// liveness and links.
type Inputs struct {
	Self        string
	SelfLinks   []l2.Link
	Nodes       []*corev1.Node
	Advs        []*v1alpha1.L2Advertisement
	Pools       map[string]*v1alpha1.IPPool
	Allocations []*v1alpha1.IPAllocation
	Services    map[types.NamespacedName]*corev1.Service
	Slices      map[types.NamespacedName][]*discoveryv1.EndpointSlice
	// Peers is the failure detector's view of the other nodes; their
	// payload is their links.
	Peers        map[string]heartbeat.Peer
	DefaultClass bool
}

// Desired is the outcome of Compute.
type Desired struct {
	Nodes     map[string]l2election.Node
	Addresses []l2election.Address
	// Services holding each address.
	Services map[netip.Addr][]types.NamespacedName
	// Selected are the nodes some L2Advertisement selects: the failure
	// detector's peers.
	Selected []string
}

// payload is what a speaker's heartbeats carry: its links that are up,
// the addresses it answers for, and whether it has lost the API server.
type payload struct {
	Links    []l2.Link    `json:"links"`
	Claims   []netip.Addr `json:"claims,omitempty"`
	APIStale bool         `json:"apiStale,omitempty"`
}

// encodePayload is the heartbeat payload for the node's links.
func encodePayload(links []l2.Link) json.RawMessage {
	return payload{Links: links}.encode()
}

func (p payload) encode() json.RawMessage {
	b, _ := json.Marshal(p) // strings, prefixes and addresses always encode
	return b
}

// peerClaims are the addresses alive peers say they answer for.
func peerClaims(peers map[string]heartbeat.Peer) map[netip.Addr][]l2election.Claim {
	out := map[netip.Addr][]l2election.Claim{}
	for name, p := range peers {
		if !p.Alive {
			continue
		}
		var pl payload
		if json.Unmarshal(p.Payload, &pl) != nil {
			continue
		}
		for _, ip := range pl.Claims {
			out[ip] = append(out[ip], l2election.Claim{Node: name, APIStale: pl.APIStale})
		}
	}
	return out
}

// Compute turns the cluster's objects and the detector's view into the
// election's inputs. Addresses no L2Advertisement selects, or that no
// Service of bgplb's wants announced (gone, another class, no usable
// endpoint), are left out.
func Compute(in Inputs) Desired {
	d := Desired{Nodes: map[string]l2election.Node{}, Services: map[netip.Addr][]types.NamespacedName{}}
	selectedBy := make([][]string, len(in.Advs))
	isSelected := map[string]bool{}
	for _, n := range in.Nodes {
		st := l2election.Node{Ready: nodeReady(n), Excluded: hasLabel(n, excludeLabel)}
		if n.Name == in.Self {
			st.Alive = true
			st.Links = electionLinks(in.SelfLinks)
		} else if p, ok := in.Peers[n.Name]; ok && p.Alive {
			st.Alive = true
			var pl payload
			if json.Unmarshal(p.Payload, &pl) == nil {
				st.Links = electionLinks(pl.Links)
			}
		}
		d.Nodes[n.Name] = st
		for i, a := range in.Advs {
			if selectorMatches(a.Spec.NodeSelector, n.Labels) {
				selectedBy[i] = append(selectedBy[i], n.Name)
				isSelected[n.Name] = true
			}
		}
	}
	for name := range isSelected {
		d.Selected = append(d.Selected, name)
	}
	slices.Sort(d.Selected)
	sets := make([]map[string]bool, len(in.Advs))
	for i, names := range selectedBy {
		sets[i] = make(map[string]bool, len(names))
		for _, n := range names {
			sets[i][n] = true
		}
	}

	for _, alloc := range in.Allocations {
		ip, err := netip.ParseAddr(alloc.Spec.Address)
		if err != nil {
			continue
		}
		var sels []l2election.Selection
		for i, a := range in.Advs {
			if selectsPool(a, alloc, in.Pools) {
				ifs := make([]string, len(a.Spec.Interfaces))
				for j, n := range a.Spec.Interfaces {
					ifs[j] = string(n)
				}
				sels = append(sels, l2election.Selection{Nodes: selectedBy[i], NodeSet: sets[i], Interfaces: ifs})
			}
		}
		if len(sels) == 0 {
			continue
		}
		addr := l2election.Address{IP: ip, Selections: sels, Key: hashKey(alloc)}
		wanted, anyNode := false, false
		endpointNodes := []string{}
		for _, ref := range alloc.Spec.Services {
			key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
			svc := in.Services[key]
			if !stillHolder(svc, ref) || !ownership.Qualifies(svc, in.DefaultClass) {
				continue
			}
			d.Services[ip] = append(d.Services[ip], key)
			nodes, usable := usableEndpointNodes(in.Slices[key])
			if !usable {
				continue
			}
			wanted = true
			if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
				endpointNodes = append(endpointNodes, nodes...)
			} else {
				anyNode = true
			}
		}
		if !wanted {
			continue
		}
		if !anyNode {
			slices.Sort(endpointNodes)
			addr.EndpointNodes = slices.Compact(endpointNodes)
		}
		d.Addresses = append(d.Addresses, addr)
	}
	return d
}

// hashKey is what an address's owner is hashed on: the sharing key of a
// shared address, else its first Service, so that the IPv4 and IPv6
// addresses of a dual-stack Service land on the same node when it is
// eligible for both.
func hashKey(a *v1alpha1.IPAllocation) string {
	if a.Spec.SharingKey != "" {
		return "sharing/" + a.Spec.SharingKey
	}
	if len(a.Spec.Services) > 0 {
		return a.Spec.Services[0].Namespace + "/" + a.Spec.Services[0].Name
	}
	return a.Spec.Address
}

func electionLinks(ls []l2.Link) []l2election.Link {
	out := make([]l2election.Link, len(ls))
	for i, l := range ls {
		out[i] = l2election.Link{Name: l.Name, Prefixes: l.Prefixes}
	}
	return out
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hasLabel(n *corev1.Node, key string) bool {
	_, ok := n.Labels[key]
	return ok
}

// selectorMatches: a nil selector selects everything; an invalid one
// nothing.
func selectorMatches(sel *metav1.LabelSelector, set map[string]string) bool {
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(set))
}

// selectsPool: the advertisement selects the allocation's pool by name or
// label (the labels the allocation recorded when the pool is gone), or
// names no pool at all.
func selectsPool(a *v1alpha1.L2Advertisement, alloc *v1alpha1.IPAllocation, pools map[string]*v1alpha1.IPPool) bool {
	if len(a.Spec.IPPools) == 0 && a.Spec.IPPoolSelector == nil {
		return true
	}
	if slices.Contains(a.Spec.IPPools, alloc.Spec.Pool) {
		return true
	}
	if a.Spec.IPPoolSelector == nil {
		return false
	}
	lbls := alloc.Spec.PoolLabels
	if p := pools[alloc.Spec.Pool]; p != nil {
		lbls = p.Labels
	}
	return selectorMatches(a.Spec.IPPoolSelector, lbls)
}

// stillHolder: the Service exists, is not being deleted, and is the one
// the allocation was made for.
func stillHolder(svc *corev1.Service, ref v1alpha1.ServiceReference) bool {
	if svc == nil || svc.DeletionTimestamp != nil {
		return false
	}
	return ref.UID == "" || svc.UID == ref.UID
}

// usableEndpointNodes returns the nodes with a usable endpoint and whether
// there is any usable endpoint at all (one without a node counts only for
// the latter).
func usableEndpointNodes(slices []*discoveryv1.EndpointSlice) ([]string, bool) {
	var nodes []string
	anyUsable := false
	for _, s := range slices {
		for i := range s.Endpoints {
			ep := &s.Endpoints[i]
			if !endpointUsable(ep.Conditions) {
				continue
			}
			anyUsable = true
			if ep.NodeName != nil {
				nodes = append(nodes, *ep.NodeName)
			}
		}
	}
	return nodes, anyUsable
}

// endpointUsable: ready, or still serving while terminating (nil ready or
// serving mean true, nil terminating false, per the EndpointSlice API).
func endpointUsable(c discoveryv1.EndpointConditions) bool {
	if c.Ready == nil || *c.Ready {
		return true
	}
	return (c.Serving == nil || *c.Serving) && c.Terminating != nil && *c.Terminating
}
