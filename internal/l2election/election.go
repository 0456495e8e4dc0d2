package l2election

import (
	"net/netip"
	"slices"
)

// Node is what the election knows about one node of the cluster.
type Node struct {
	// Ready is the Node's Ready condition.
	Ready bool
	// Excluded: the node carries node.kubernetes.io/exclude-from-external-load-balancers.
	Excluded bool
	// Alive: the failure detector hears from the node's speaker.
	Alive bool
	// Links are the node's network interfaces that are up, with their
	// addresses' prefixes (as the node's speaker reports them).
	Links []Link
}

// Link is an interface that is up.
type Link struct {
	Name string
	// Prefixes are the interface's own addresses with their prefix
	// length (e.g. 198.51.100.7/24), which say which subnets it is on.
	Prefixes []netip.Prefix
}

// Selection is one L2Advertisement's choice for an address: the nodes it
// selects and the interfaces it names (none: the interface whose subnet
// contains the address).
type Selection struct {
	Nodes      []string
	Interfaces []string
	// NodeSet, when not nil, holds the same names as Nodes for fast
	// lookups (callers share one per advertisement across addresses).
	NodeSet map[string]bool
}

func (s *Selection) has(name string) bool {
	if s.NodeSet != nil {
		return s.NodeSet[name]
	}
	return slices.Contains(s.Nodes, name)
}

// Address is one address to announce.
type Address struct {
	IP netip.Addr
	// Key is what the owner is hashed on; empty means the address itself.
	// Giving both addresses of a dual-stack Service the same key puts them
	// on the same node whenever it is eligible for both.
	Key string
	// Selections of the advertisements that select the address's pool.
	Selections []Selection
	// EndpointNodes, when not nil, restricts the owner to these nodes
	// (externalTrafficPolicy: Local: the nodes with a ready endpoint of a
	// Service holding the address). nil means any node.
	EndpointNodes []string
}

// Owner is the result for one address.
type Owner struct {
	// Node that answers for the address; empty when no node is eligible.
	Node string
	// Interfaces the owner answers on, sorted.
	Interfaces []string
}

// Elect returns the owner of every address. Addresses no node is eligible
// for map to an Owner with an empty Node.
func Elect(nodes map[string]Node, addrs []Address) map[netip.Addr]Owner {
	out := make(map[netip.Addr]Owner, len(addrs))
	for i := range addrs {
		out[addrs[i].IP] = ElectOne(nodes, &addrs[i])
	}
	return out
}

// ElectOne returns the owner of one address.
func ElectOne(nodes map[string]Node, a *Address) Owner {
	key := keyOf(a)
	var best Owner
	var bestW uint64
	// A node named by several selections is weighed again with the same
	// result, which changes nothing.
	for i := range a.Selections {
		for _, name := range a.Selections[i].Nodes {
			if name == best.Node {
				continue
			}
			w := Weight(key, name)
			if best.Node != "" && (w < bestW || (w == bestW && name > best.Node)) {
				continue // cheaper than the eligibility check
			}
			ifaces := Interfaces(nodes, a, name)
			if ifaces == nil {
				continue
			}
			best, bestW = Owner{Node: name, Interfaces: ifaces}, w
		}
	}
	return best
}

// Eligible reports whether the node may own the address.
func Eligible(nodes map[string]Node, a *Address, name string) bool {
	return Interfaces(nodes, a, name) != nil
}

// Interfaces returns the interfaces the node would answer for the address
// on, sorted, or nil when the node is not eligible for it: not selected,
// not Ready, excluded, not alive, without an endpoint when one is needed,
// or with no suitable interface up.
func Interfaces(nodes map[string]Node, a *Address, name string) []string {
	n, ok := nodes[name]
	if !ok || !n.Ready || n.Excluded || !n.Alive {
		return nil
	}
	if a.EndpointNodes != nil && !slices.Contains(a.EndpointNodes, name) {
		return nil
	}
	var out []string
	for i := range a.Selections {
		s := &a.Selections[i]
		if !s.has(name) {
			continue
		}
		for _, l := range n.Links {
			if linkServes(l, s.Interfaces, a.IP) && !slices.Contains(out, l.Name) {
				out = append(out, l.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// linkServes reports whether an up link answers for ip: it is one of the
// named interfaces, or, with none named, its subnet contains ip.
func linkServes(l Link, named []string, ip netip.Addr) bool {
	if len(named) > 0 {
		return slices.Contains(named, l.Name)
	}
	for _, p := range l.Prefixes {
		if p.Masked().Contains(ip) {
			return true
		}
	}
	return false
}

// Weight is the rendezvous weight of a node for a key: FNV-1a over
// key, a separator no name contains, and the node name, then a 64-bit
// finalizer (SplitMix64) so that keys differing in one character spread
// over the whole range. It is the same on every architecture and in every
// process, which is what lets every speaker compute the same owner.
func Weight(key, node string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for _, s := range [...]string{key, "\x00", node} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// keyOf is the hash key of an address: its Key, else the address.
func keyOf(a *Address) string {
	if a.Key != "" {
		return a.Key
	}
	return a.IP.String()
}
