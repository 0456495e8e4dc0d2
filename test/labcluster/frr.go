package labcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/bgplb/bgplb/test/lab"
)

// Path is one BGP path a router holds for a prefix, as FRR reports it.
type Path struct {
	// NextHop is the path's (global) next hop.
	NextHop netip.Addr
	// Peer is the address of the session the path came from; Hostname is
	// the peer's hostname if it sent one.
	Peer     string
	Hostname string
	// PeerType is "external" or "internal".
	PeerType string
	// Communities and LargeCommunities as FRR prints them ("64512:100",
	// "no-export", "graceful-shutdown"...).
	Communities      []string
	LargeCommunities []string
	// LocalPref is LOCAL_PREF as received (iBGP), nil when absent.
	LocalPref *int64
	ASPath    string
	Best      bool
	Multipath bool
	// Stale marks a path kept for a restarting peer (graceful restart).
	Stale bool
}

type frrPath struct {
	ASPath struct {
		String string `json:"string"`
	} `json:"aspath"`
	Multipath bool `json:"multipath"`
	Bestpath  *struct {
		Overall bool `json:"overall"`
	} `json:"bestpath"`
	Stale     bool `json:"stale"`
	Community *struct {
		String string `json:"string"`
	} `json:"community"`
	LargeCommunity *struct {
		String string `json:"string"`
	} `json:"largeCommunity"`
	LocPrf   *int64 `json:"locPrf"`
	Nexthops []struct {
		IP    string `json:"ip"`
		Scope string `json:"scope"`
	} `json:"nexthops"`
	Peer struct {
		PeerID   string `json:"peerId"`
		Hostname string `json:"hostname"`
		Type     string `json:"type"`
	} `json:"peer"`
}

// afi names a prefix's address family the way vtysh wants it.
func afi(p netip.Prefix) string {
	if p.Addr().Is6() {
		return "ipv6"
	}
	return "ipv4"
}

// HostPrefix returns addr as a /32 or /128.
func HostPrefix(addr netip.Addr) netip.Prefix { return netip.PrefixFrom(addr, addr.BitLen()) }

// Paths returns the BGP paths router r holds for exactly prefix (none if
// it has no such route).
func Paths(r *lab.Router, prefix netip.Prefix) ([]Path, error) {
	out, err := r.Vtysh(fmt.Sprintf("show bgp %s unicast %s json", afi(prefix), prefix.Masked()))
	if err != nil {
		return nil, err
	}
	return ParsePaths([]byte(out))
}

// ParsePaths decodes "show bgp <afi> unicast <prefix> json".
func ParsePaths(b []byte) ([]Path, error) {
	s := strings.TrimSpace(string(b))
	if s == "" || s == "{}" || !strings.HasPrefix(s, "{") {
		// FRR prints {} (or "% Network not in table") for an unknown prefix.
		return nil, nil
	}
	var rt struct {
		Paths []frrPath `json:"paths"`
	}
	if err := json.Unmarshal(b, &rt); err != nil {
		return nil, fmt.Errorf("decode bgp paths: %w", err)
	}
	var out []Path
	for _, fp := range rt.Paths {
		p := Path{
			Peer: fp.Peer.PeerID, Hostname: fp.Peer.Hostname, PeerType: fp.Peer.Type,
			LocalPref: fp.LocPrf, ASPath: fp.ASPath.String,
			Best: fp.Bestpath != nil && fp.Bestpath.Overall, Multipath: fp.Multipath, Stale: fp.Stale,
		}
		for _, h := range fp.Nexthops {
			if h.Scope == "link-local" {
				continue
			}
			if a, err := netip.ParseAddr(h.IP); err == nil && !p.NextHop.IsValid() {
				p.NextHop = a
			}
		}
		if fp.Community != nil {
			p.Communities = strings.Fields(fp.Community.String)
		}
		if fp.LargeCommunity != nil {
			p.LargeCommunities = strings.Fields(fp.LargeCommunity.String)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Path) int { return a.NextHop.Compare(b.NextHop) })
	return out, nil
}

// PathNextHops returns the sorted next hops of paths.
func PathNextHops(paths []Path) []netip.Addr {
	var out []netip.Addr
	for _, p := range paths {
		out = append(out, p.NextHop)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// Neighbor is one BGP session as a router sees it.
type Neighbor struct {
	// Address of the node's end of the session.
	Address  string
	Hostname string
	// State is FRR's session state ("Established", "Active", ...).
	State string
	// PfxRcd is the number of prefixes received on the session.
	PfxRcd   int
	RemoteAS uint32
	LocalAS  uint32
	// Family is "ipv4" or "ipv6" (the session's activated family).
	Family string
}

// Neighbors returns the router's BGP sessions keyed by the node address.
// Dynamic neighbors appear once they have connected.
func Neighbors(r *lab.Router) (map[string]Neighbor, error) {
	out, err := r.Vtysh("show bgp summary json")
	if err != nil {
		return nil, err
	}
	return ParseNeighbors([]byte(out))
}

// ParseNeighbors decodes "show bgp summary json".
func ParseNeighbors(b []byte) (map[string]Neighbor, error) {
	var sum map[string]struct {
		Peers map[string]struct {
			Hostname string `json:"hostname"`
			State    string `json:"state"`
			PfxRcd   int    `json:"pfxRcd"`
			RemoteAS uint32 `json:"remoteAs"`
			LocalAS  uint32 `json:"localAs"`
		} `json:"peers"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		return nil, fmt.Errorf("decode bgp summary: %w", err)
	}
	out := map[string]Neighbor{}
	for fam, s := range sum {
		f := "ipv4"
		if strings.HasPrefix(fam, "ipv6") {
			f = "ipv6"
		}
		for a, p := range s.Peers {
			out[a] = Neighbor{Address: a, Hostname: p.Hostname, State: p.State, PfxRcd: p.PfxRcd,
				RemoteAS: p.RemoteAS, LocalAS: p.LocalAS, Family: f}
		}
	}
	return out, nil
}

// BFDPeer is one BFD session as a router sees it.
type BFDPeer struct {
	Peer   string `json:"peer"`
	Local  string `json:"local"`
	Status string `json:"status"` // "up", "down", "init", "shutdown"
	// Intervals in milliseconds and the detect multiplier the router uses.
	ReceiveInterval  int `json:"receive-interval"`
	TransmitInterval int `json:"transmit-interval"`
	DetectMultiplier int `json:"detect-multiplier"`
	RemoteReceive    int `json:"remote-receive-interval"`
	RemoteTransmit   int `json:"remote-transmit-interval"`
	RemoteMultiplier int `json:"remote-detect-multiplier"`
}

// BFDPeers returns the router's BFD sessions keyed by peer address.
func BFDPeers(r *lab.Router) (map[string]BFDPeer, error) {
	var peers []BFDPeer
	if err := r.VtyshJSON("show bfd peers json", &peers); err != nil {
		return nil, err
	}
	out := map[string]BFDPeer{}
	for _, p := range peers {
		out[p.Peer] = p
	}
	return out, nil
}

// NeighborDetail is what "show bgp neighbors <addr> json" says about one session.
type NeighborDetail struct {
	State string
	// UpFor is how long the session has been Established.
	UpFor time.Duration
	// ConnectionsEstablished counts the session's establishments.
	ConnectionsEstablished int
	// RemoteGRMode is the peer's graceful restart mode as FRR sees it
	// ("Restart" when the peer advertised the restart capability).
	RemoteGRMode string
	// LastReset says why the session last went down.
	LastReset string
}

// NeighborInfo returns the router's detail of the session with addr
// (ok false if the router has no such neighbor).
func NeighborInfo(r *lab.Router, addr string) (NeighborDetail, bool, error) {
	out, err := r.Vtysh("show bgp neighbors " + addr + " json")
	if err != nil {
		return NeighborDetail{}, false, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return NeighborDetail{}, false, fmt.Errorf("decode neighbor %s: %w", addr, err)
	}
	raw, ok := m[addr]
	if !ok {
		return NeighborDetail{}, false, nil
	}
	var n struct {
		BGPState               string `json:"bgpState"`
		UpMsec                 int64  `json:"bgpTimerUpMsec"`
		ConnectionsEstablished int    `json:"connectionsEstablished"`
		LastReset              string `json:"lastResetDueTo"`
		GR                     struct {
			Remote string `json:"remoteGrMode"`
		} `json:"gracefulRestartInfo"`
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return NeighborDetail{}, false, fmt.Errorf("decode neighbor %s: %w", addr, err)
	}
	return NeighborDetail{
		State: n.BGPState, UpFor: time.Duration(n.UpMsec) * time.Millisecond,
		ConnectionsEstablished: n.ConnectionsEstablished, RemoteGRMode: n.GR.Remote, LastReset: n.LastReset,
	}, true, nil
}

// CountKernelRoutes counts the routes inside pool in the router's main
// kernel table.
func CountKernelRoutes(r *lab.Router, pool netip.Prefix) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fam := "-4"
	if pool.Addr().Is6() {
		fam = "-6"
	}
	out, err := r.Exec(ctx, "ip", "-j", fam, "route", "show", "root", pool.Masked().String())
	if err != nil {
		return 0, err
	}
	var routes []json.RawMessage
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		return 0, fmt.Errorf("routes of %s in %s: %w", pool, r.Netns, err)
	}
	return len(routes), nil
}

// RouteView is what one router holds for a host route: the nodes its BGP
// paths come from and the nodes its kernel route's next hops belong to,
// both sorted (never nil), and the paths themselves.
type RouteView struct {
	BGP, Kernel []string
	Paths       []Path
}

// ViewOf reads router r's BGP paths and kernel route for addr, naming each
// next hop with nodeOf.
func ViewOf(r *lab.Router, addr netip.Addr, nodeOf func(netip.Addr) string) (RouteView, error) {
	p := HostPrefix(addr)
	paths, err := Paths(r, p)
	if err != nil {
		return RouteView{}, err
	}
	hops, err := r.KernelRoutes(p)
	if err != nil {
		return RouteView{}, err
	}
	v := RouteView{Paths: paths, BGP: []string{}, Kernel: []string{}}
	for _, path := range paths {
		v.BGP = append(v.BGP, nodeOf(path.NextHop))
	}
	for _, h := range hops {
		v.Kernel = append(v.Kernel, nodeOf(h))
	}
	slices.Sort(v.BGP)
	slices.Sort(v.Kernel)
	return v, nil
}
