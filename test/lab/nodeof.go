package lab

import (
	"context"
	"encoding/json"
	"net/netip"
	"sync"
	"time"
)

// hopNames caches the nodes' IPv6 link-local addresses (they derive from the
// veths' MACs, which stay put for the lab's life).
type hopNames struct {
	mu         sync.Mutex
	linkLocals map[netip.Addr]string
}

// NextHop is the address router uses to reach node for a route of addr's
// family: the node's address on that router's LAN, which is the local
// address of its BGP session (invalid if there is no such node or link).
func (l *Lab) NextHop(node, router string, addr netip.Addr) netip.Addr {
	n := l.Node(node)
	if n == nil {
		return netip.Addr{}
	}
	k, ok := n.Link(router)
	if !ok {
		return netip.Addr{}
	}
	if addr.Is6() {
		return k.Addr6
	}
	return k.Addr4
}

// NodeOf returns the node owning a next hop on a router LAN ("" if none).
// IPv6 kernel routes may point at a node's link-local address.
func (l *Lab) NodeOf(hop netip.Addr) string {
	for _, n := range l.Nodes() {
		for _, k := range n.Links {
			if k.Addr4 == hop || k.Addr6 == hop {
				return n.Name
			}
		}
	}
	if hop.Is6() && hop.IsLinkLocalUnicast() {
		return l.linkLocals()[hop.WithZone("")]
	}
	return ""
}

// linkLocals maps the nodes' link-local addresses to node names, read once.
func (l *Lab) linkLocals() map[netip.Addr]string {
	l.hops.mu.Lock()
	defer l.hops.mu.Unlock()
	if l.hops.linkLocals != nil {
		return l.hops.linkLocals
	}
	m := map[netip.Addr]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range l.Nodes() {
		out, err := n.Exec(ctx, "ip", "-j", "-6", "addr", "show", "scope", "link")
		if err != nil {
			return m // not cached: try again next time
		}
		var links []struct {
			AddrInfo []struct {
				Local string `json:"local"`
			} `json:"addr_info"`
		}
		if err := json.Unmarshal([]byte(out), &links); err != nil {
			return m
		}
		for _, k := range links {
			for _, a := range k.AddrInfo {
				if ip, err := netip.ParseAddr(a.Local); err == nil {
					m[ip] = n.Name
				}
			}
		}
	}
	l.hops.linkLocals = m
	return m
}
