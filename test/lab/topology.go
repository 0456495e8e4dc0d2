package lab

import (
	"fmt"
	"net/netip"

	"github.com/go-logr/logr"
)

// Prefix starts the name of every network namespace and root-namespace link
// the lab creates, so leftovers of a crashed run can be found and removed.
const Prefix = "bgplb-lab-"

// MgmtBridge is the bridge in the root namespace that reaches every node.
const MgmtBridge = "bgplb-mgmt"

// mgmtVethPrefix names the root ends of the management veths (bgplb-m-n1...).
const mgmtVethPrefix = "bgplb-m-"

// Fixed addresses of the lab (documentation ranges only).
var (
	// HostMgmt4 and HostMgmt6 are the root namespace's addresses on the
	// management bridge: bind the API server here so node processes reach it.
	HostMgmt4 = netip.MustParseAddr("198.51.100.1")
	HostMgmt6 = netip.MustParseAddr("2001:db8:fe::1")
	// MgmtNet4 and MgmtNet6 are the management subnets.
	MgmtNet4 = netip.MustParsePrefix("198.51.100.0/26")
	MgmtNet6 = netip.MustParsePrefix("2001:db8:fe::/64")
	// ClientNet4 and ClientNet6 are the client LAN behind both routers.
	ClientNet4 = netip.MustParsePrefix("198.51.100.128/26")
	ClientNet6 = netip.MustParsePrefix("2001:db8:100::/64")
	// Pool4 and Pool6 are where Service addresses come from; only BGP routes them.
	Pool4 = netip.MustParsePrefix("203.0.113.0/24")
	Pool6 = netip.MustParsePrefix("2001:db8:ffff::/112")
)

// Default AS numbers (private range).
const (
	// NodeASN is the AS the speakers are expected to use by default.
	NodeASN uint32 = 64512
	// Router1ASN and Router2ASN are the routers' own ASNs (eBGP to the nodes).
	Router1ASN uint32 = 64501
	Router2ASN uint32 = 64502
)

// MaxNodes bounds Options.Nodes: node addresses are carved from /26 LANs.
const MaxNodes = 40

// Options shape a lab. The zero value is a usable default.
type Options struct {
	// Nodes is the number of node namespaces n1..nN (default 3, at most MaxNodes).
	Nodes int
	// NodeASN is the ASN the routers expect from the nodes (default NodeASN).
	NodeASN uint32
	// Dir holds configs, pid files and logs; default a new directory under
	// os.TempDir(). It must be reachable by the "frr" user.
	Dir string
	// KeepDir keeps Dir after Down (logs for a failed run).
	KeepDir bool
	// RunDir holds the lock and the registry of started processes that
	// outlives a crash (default /run/bgplb-lab).
	RunDir string
	// Router lets a caller change a router's config before the first start
	// (e.g. r2 iBGP, a password, BFD off). name is "r1" or "r2".
	Router func(name string, cfg *RouterConfig)
	// Log receives progress messages; default discard.
	Log logr.Logger
}

// Router is one FRR router namespace. Its LAN (a bridge "lan" inside the
// router's namespace) connects it to every node.
type Router struct {
	Name  string // "r1"
	Netns string // "bgplb-lab-r1"
	// LAN4/LAN6 are the node-facing subnets; Addr4/Addr6 the router's addresses there.
	LAN4, LAN6   netip.Prefix
	Addr4, Addr6 netip.Addr
	// ClientAddr4/6 are the router's addresses on the client LAN.
	ClientAddr4, ClientAddr6 netip.Addr

	lab *Lab
	frr *frrRouter
}

// NodeLink is a node's interface on one router's LAN.
type NodeLink struct {
	Router       string // "r1"
	Ifname       string // interface name inside the node namespace ("r1")
	Addr4, Addr6 netip.Addr
}

// Node is one node namespace, wired to every router and to the management bridge.
type Node struct {
	Name  string // "n1"
	Netns string // "bgplb-lab-n1"
	// Mgmt4/Mgmt6 are the node's addresses on the management network (interface mgmt0).
	Mgmt4, Mgmt6 netip.Addr
	Links        []NodeLink

	lab *Lab
}

// Client is the namespace that sends traffic to Service addresses through
// both routers (ECMP default routes).
type Client struct {
	Name  string // "c"
	Netns string // "bgplb-lab-c"
	Addr4 netip.Addr
	Addr6 netip.Addr

	lab *Lab
}

func addr4(a, b, c, d int) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a), byte(b), byte(c), byte(d)})
}

// addr6 returns prefix's address with the low 16 bits set to v written as
// decimal digits read as hex, so node 11 is ::11 in every family.
func addr6(prefix string, v int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("%s%d", prefix, v))
}

// buildTopology fills in the namespaces and addresses for n nodes.
func (l *Lab) buildTopology(n int) {
	l.routers = []*Router{
		{
			Name: "r1", Netns: Prefix + "r1",
			LAN4: netip.MustParsePrefix("192.0.2.0/26"), LAN6: netip.MustParsePrefix("2001:db8:1::/64"),
			Addr4: addr4(192, 0, 2, 1), Addr6: netip.MustParseAddr("2001:db8:1::1"),
			ClientAddr4: addr4(198, 51, 100, 129), ClientAddr6: netip.MustParseAddr("2001:db8:100::1"),
		},
		{
			Name: "r2", Netns: Prefix + "r2",
			LAN4: netip.MustParsePrefix("192.0.2.64/26"), LAN6: netip.MustParsePrefix("2001:db8:2::/64"),
			Addr4: addr4(192, 0, 2, 65), Addr6: netip.MustParseAddr("2001:db8:2::1"),
			ClientAddr4: addr4(198, 51, 100, 130), ClientAddr6: netip.MustParseAddr("2001:db8:100::2"),
		},
	}
	for _, r := range l.routers {
		r.lab = l
	}
	for i := 1; i <= n; i++ {
		nd := &Node{
			Name:  fmt.Sprintf("n%d", i),
			Netns: fmt.Sprintf("%sn%d", Prefix, i),
			Mgmt4: addr4(198, 51, 100, 10+i),
			Mgmt6: addr6("2001:db8:fe::", 10+i),
			lab:   l,
		}
		nd.Links = []NodeLink{
			{Router: "r1", Ifname: "r1", Addr4: addr4(192, 0, 2, 10+i), Addr6: addr6("2001:db8:1::", 10+i)},
			{Router: "r2", Ifname: "r2", Addr4: addr4(192, 0, 2, 74+i), Addr6: addr6("2001:db8:2::", 10+i)},
		}
		l.nodes = append(l.nodes, nd)
	}
	l.client = &Client{
		Name: "c", Netns: Prefix + "c",
		Addr4: addr4(198, 51, 100, 140), Addr6: netip.MustParseAddr("2001:db8:100::10"),
		lab: l,
	}
}

// DefaultRouterConfig is the config a router starts with: eBGP to the nodes'
// ASN through dynamic neighbors on its LAN (one group per family), BFD with
// the 300 ms x 3 profile, ECMP over 16 paths. FRR is a graceful restart
// helper for restarting speakers by default; GracefulRestart (the router
// itself restarting) stays off so a restarted bgpd does not wait for
// end-of-RIB before replacing zebra's stale routes.
func (r *Router) DefaultRouterConfig() RouterConfig {
	asn := Router1ASN
	if r.Name == "r2" {
		asn = Router2ASN
	}
	return RouterConfig{
		Hostname:     r.Name,
		ASN:          asn,
		RouterID:     r.Addr4,
		MaximumPaths: 16,
		BFD:          DefaultBFDProfile(),
		PeerGroups: []PeerGroup{
			{Name: "nodes4", RemoteASN: r.lab.nodeASN, ListenRanges: []netip.Prefix{r.LAN4}, BFD: true},
			{Name: "nodes6", RemoteASN: r.lab.nodeASN, ListenRanges: []netip.Prefix{r.LAN6}, BFD: true},
		},
	}
}

// Link returns the node's link on the named router's LAN.
func (n *Node) Link(router string) (NodeLink, bool) {
	for _, k := range n.Links {
		if k.Router == router {
			return k, true
		}
	}
	return NodeLink{}, false
}

// Routers returns r1 and r2.
func (l *Lab) Routers() []*Router { return l.routers }

// Router returns the router with that name ("r1", "r2") or nil.
func (l *Lab) Router(name string) *Router {
	for _, r := range l.routers {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Nodes returns n1..nN.
func (l *Lab) Nodes() []*Node { return l.nodes }

// Node returns the node with that name ("n1"...) or nil.
func (l *Lab) Node(name string) *Node {
	for _, n := range l.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Client returns the client namespace.
func (l *Lab) Client() *Client { return l.client }

// NodeASN is the ASN the routers expect from the nodes.
func (l *Lab) NodeASN() uint32 { return l.nodeASN }

// namespaces lists every namespace of the lab, routers first.
func (l *Lab) namespaces() []string {
	var ns []string
	for _, r := range l.routers {
		ns = append(ns, r.Netns)
	}
	for _, n := range l.nodes {
		ns = append(ns, n.Netns)
	}
	return append(ns, l.client.Netns)
}
