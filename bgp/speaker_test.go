package bgp

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Component tests: a real speaker against real GoBGP routers over loopback
// TCP. They need no root. Every wait polls with a generous timeout.

func to(peers ...string) map[string]Attributes {
	m := make(map[string]Attributes, len(peers))
	for _, p := range peers {
		m[p] = Attributes{}
	}
	return m
}

func path(prefix string, peers map[string]Attributes) Path {
	return Path{Prefix: netip.MustParsePrefix(prefix), Peers: peers}
}

// An eBGP IPv4 session with a 4-byte local ASN: prefixes, next hop,
// AS path, communities and large communities reach the router exactly,
// internal tags never do, withdraws work, and Status follows.
func TestIPv4EBGPAnnounceAndWithdraw(t *testing.T) {
	r := startRouter(t, "127.0.0.2", 65010, "198.51.100.2")
	r.addNeighbor(speakerV4, speakerASN, neighborOpts{})
	s := newSpeaker(t, Options{})

	attrs := Attributes{
		Communities:      []uint32{comm("no-export"), comm("65000:100")},
		LargeCommunities: []LargeCommunity{lc("4200000001:1:2")},
		LocalPref:        u32(300), // iBGP only: must not reach an eBGP router
	}
	st := State{
		ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID),
		Peers: []Peer{r.peerFor("tor")},
		Paths: []Path{
			path("192.0.2.10/32", map[string]Attributes{"tor": attrs}),
			path("192.0.2.0/24", to("tor")),
		},
	}
	mustApply(t, s, st)
	waitEstablished(t, s, "tor")
	got := r.waitRoutes(speakerV4, "192.0.2.10/32", "192.0.2.0/24")

	svc := got[netip.MustParsePrefix("192.0.2.10/32")]
	if svc.NextHop != speakerV4 {
		t.Errorf("next hop = %v, want the session's local address %v", svc.NextHop, speakerV4)
	}
	if !slices.Equal(svc.ASPath, []uint32{speakerASN}) {
		t.Errorf("AS path = %v, want [%d]", svc.ASPath, speakerASN)
	}
	if want := []uint32{comm("65000:100"), comm("no-export")}; !slices.Equal(svc.Communities, want) {
		t.Errorf("communities = %v, want %v", svc.Communities, want)
	}
	if want := []LargeCommunity{lc("4200000001:1:2")}; !slices.Equal(svc.Large, want) {
		t.Errorf("large communities = %v, want %v (internal tags must be stripped)", svc.Large, want)
	}
	if svc.LocalPref != nil {
		t.Errorf("eBGP router received LOCAL_PREF %d", *svc.LocalPref)
	}
	agg := got[netip.MustParsePrefix("192.0.2.0/24")]
	if len(agg.Communities) != 0 || len(agg.Large) != 0 {
		t.Errorf("aggregate carries attributes: %v", agg)
	}
	eventually(t, waitLong, "PrefixesSent=2", func() error {
		if ps := peerStatus(t, s, "tor"); ps.PrefixesSent != 2 || ps.Since.IsZero() {
			return fmt.Errorf("status %+v", ps)
		}
		return nil
	})

	// Idempotent: the same state again changes nothing on the wire.
	updates := r.receivedUpdates(speakerV4)
	mustApply(t, s, st)
	// Withdraw the Service address.
	st.Paths = st.Paths[1:]
	mustApply(t, s, st)
	r.waitRoutes(speakerV4, "192.0.2.0/24")
	if d := r.receivedUpdates(speakerV4) - updates; d != 1 {
		t.Errorf("re-applying the same state then withdrawing one path sent %d UPDATEs, want 1", d)
	}
	if ps := peerStatus(t, s, "tor"); ps.PrefixesSent != 1 {
		t.Errorf("PrefixesSent = %d after withdraw, want 1", ps.PrefixesSent)
	}
}

// IPv6 over MP-BGP: the next hop is the speaker's address on the session;
// IPv4 prefixes never go to IPv6 peers and IPv6 prefixes never to IPv4
// peers.
func TestIPv6AndFamilySeparation(t *testing.T) {
	r6 := startRouter(t, "::1", 65020, "198.51.100.6")
	r6.addNeighbor(netip.MustParseAddr("::1"), speakerASN, neighborOpts{})
	r4 := startRouter(t, "127.0.0.3", 65021, "198.51.100.3")
	r4.addNeighbor(speakerV4, speakerASN, neighborOpts{})
	s := newSpeaker(t, Options{})

	both := map[string]Attributes{
		"v6": {Communities: []uint32{comm("65000:6")}},
		"v4": {Communities: []uint32{comm("65000:4")}},
	}
	mustApply(t, s, State{
		ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID),
		Peers: []Peer{r6.peerFor("v6"), r4.peerFor("v4")},
		Paths: []Path{
			path("2001:db8::10/128", both),
			path("2001:db8:1::/64", both),
			path("192.0.2.30/32", both),
		},
	})
	waitEstablished(t, s, "v6")
	waitEstablished(t, s, "v4")
	got6 := r6.waitRoutes(netip.MustParseAddr("::1"), "2001:db8::10/128", "2001:db8:1::/64")
	for p, rt := range got6 {
		if rt.NextHop != netip.MustParseAddr("::1") {
			t.Errorf("%v: next hop %v, want ::1", p, rt.NextHop)
		}
		if !slices.Equal(rt.Communities, []uint32{comm("65000:6")}) {
			t.Errorf("%v: communities %v", p, rt.Communities)
		}
	}
	got4 := r4.waitRoutes(speakerV4, "192.0.2.30/32")
	if rt := got4[netip.MustParsePrefix("192.0.2.30/32")]; rt.NextHop != speakerV4 {
		t.Errorf("v4 next hop %v", rt.NextHop)
	}
	// The v6 router must not have received any IPv4 route either.
	var v4OnV6 int
	_ = r6.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_IN, Name: "::1", Family: bgp.RF_IPv4_UC},
		func(bgp.NLRI, []*apiutil.Path) { v4OnV6++ })
	if v4OnV6 != 0 {
		t.Errorf("IPv6 router received %d IPv4 routes", v4OnV6)
	}
	if ps := peerStatus(t, s, "v6"); ps.PrefixesSent != 2 {
		t.Errorf("v6 PrefixesSent = %d, want 2", ps.PrefixesSent)
	}
}

// The same prefix goes to two routers with different attributes; a path
// for one router never reaches the other; iBGP gets LOCAL_PREF. Changing
// one Service touches only that Service's path.
func TestPerPeerAttributes(t *testing.T) {
	ebgp := startRouter(t, "127.0.0.4", 65030, "198.51.100.4")
	ebgp.addNeighbor(speakerV4, speakerASN, neighborOpts{})
	ibgp := startRouter(t, "127.0.0.5", speakerASN, "198.51.100.5")
	ibgp.addNeighbor(speakerV4, speakerASN, neighborOpts{})
	s := newSpeaker(t, Options{})

	profE := Attributes{Communities: []uint32{comm("65000:1")}}
	profI := Attributes{Communities: []uint32{comm("65000:2")}, LargeCommunities: []LargeCommunity{lc("1:2:3")}, LocalPref: u32(200)}
	peers := []Peer{ebgp.peerFor("e"), ibgp.peerFor("i")}
	peers[0].Profiles = []Attributes{profE}
	peers[1].Profiles = []Attributes{profI}
	st := State{
		ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID), Peers: peers,
		Paths: []Path{
			path("192.0.2.20/32", map[string]Attributes{"e": profE, "i": profI}),
			path("192.0.2.21/32", map[string]Attributes{"e": profE}),
			path("192.0.2.22/32", map[string]Attributes{"i": profI}),
		},
	}
	mustApply(t, s, st)
	waitEstablished(t, s, "e")
	waitEstablished(t, s, "i")
	ge := ebgp.waitRoutes(speakerV4, "192.0.2.20/32", "192.0.2.21/32")
	gi := ibgp.waitRoutes(speakerV4, "192.0.2.20/32", "192.0.2.22/32")

	e20, i20 := ge[netip.MustParsePrefix("192.0.2.20/32")], gi[netip.MustParsePrefix("192.0.2.20/32")]
	if !slices.Equal(e20.Communities, []uint32{comm("65000:1")}) || len(e20.Large) != 0 || e20.LocalPref != nil {
		t.Errorf("eBGP router got %v, want communities [65000:1] only", e20)
	}
	if !slices.Equal(i20.Communities, []uint32{comm("65000:2")}) || !slices.Equal(i20.Large, []LargeCommunity{lc("1:2:3")}) ||
		i20.LocalPref == nil || *i20.LocalPref != 200 {
		t.Errorf("iBGP router got %v, want 65000:2, 1:2:3, local-pref 200", i20)
	}
	if i20.NextHop != speakerV4 || len(i20.ASPath) != 0 {
		t.Errorf("iBGP router got next hop %v AS path %v, want %v and empty", i20.NextHop, i20.ASPath, speakerV4)
	}

	// One Service change on each side: exactly one UPDATE on the affected
	// session, nothing on the other, and no policy call.
	ue, ui := ebgp.receivedUpdates(speakerV4), ibgp.receivedUpdates(speakerV4)
	before := s.g.callCounts()
	st.Paths = append(st.Paths, path("192.0.2.23/32", map[string]Attributes{"e": profE}))
	mustApply(t, s, st)
	ebgp.waitRoutes(speakerV4, "192.0.2.20/32", "192.0.2.21/32", "192.0.2.23/32")
	if d := diffCounts(before, s.g.callCounts()); !maps.Equal(d, map[string]int{"AddPath": 1}) {
		t.Errorf("adding one path made GoBGP calls %v, want one AddPath", d)
	}
	if d := ebgp.receivedUpdates(speakerV4) - ue; d != 1 {
		t.Errorf("eBGP router got %d UPDATEs for one new path, want 1", d)
	}
	if d := ibgp.receivedUpdates(speakerV4) - ui; d != 0 {
		t.Errorf("iBGP router got %d UPDATEs for a path not meant for it", d)
	}

	// Moving 192.0.2.21 from "e" to "i" withdraws it from e, announces it to i.
	st.Paths[1] = path("192.0.2.21/32", map[string]Attributes{"i": profI})
	mustApply(t, s, st)
	ebgp.waitRoutes(speakerV4, "192.0.2.20/32", "192.0.2.23/32")
	gi = ibgp.waitRoutes(speakerV4, "192.0.2.20/32", "192.0.2.21/32", "192.0.2.22/32")
	if rt := gi[netip.MustParsePrefix("192.0.2.21/32")]; rt.LocalPref == nil || *rt.LocalPref != 200 {
		t.Errorf("moved path at iBGP router: %v", rt)
	}

	// A new attribute profile for one Service (not declared): one statement
	// is added (1 defined set + 1 policy call) and the path sent with it.
	prof3 := Attributes{Communities: []uint32{comm("65000:3")}}
	before = s.g.callCounts()
	st.Paths[0] = path("192.0.2.20/32", map[string]Attributes{"e": prof3, "i": profI})
	mustApply(t, s, st)
	eventually(t, waitLong, "new profile at eBGP router", func() error {
		rt := ebgp.routes(speakerV4)[netip.MustParsePrefix("192.0.2.20/32")]
		if !slices.Equal(rt.Communities, []uint32{comm("65000:3")}) {
			return fmt.Errorf("got %v", rt)
		}
		return nil
	})
	if d := diffCounts(before, s.g.callCounts()); !maps.Equal(d, map[string]int{"AddDefinedSet": 1, "AddPolicy": 1, "AddPath": 1}) {
		t.Errorf("first use of a profile made GoBGP calls %v", d)
	}
	// Its last use going away removes the statement again.
	before = s.g.callCounts()
	st.Paths[0] = path("192.0.2.20/32", map[string]Attributes{"e": profE, "i": profI})
	mustApply(t, s, st)
	if d := diffCounts(before, s.g.callCounts()); !maps.Equal(d, map[string]int{"AddPath": 1, "DeletePolicy": 1, "DeleteStatement": 1, "DeleteDefinedSet": 1}) {
		t.Errorf("last use of a profile made GoBGP calls %v", d)
	}
	if n := len(s.st.stmts); n != 2 {
		t.Errorf("%d export statements left, want 2 (one declared profile per peer)", n)
	}
}

// Routes the routers send never enter the speaker's RIB and are never
// passed on to another router.
func TestRoutesFromPeersAreRejected(t *testing.T) {
	r1 := startRouter(t, "127.0.0.6", 65040, "198.51.100.7")
	r1.addNeighbor(speakerV4, speakerASN, neighborOpts{})
	r2 := startRouter(t, "127.0.0.7", 65041, "198.51.100.8")
	r2.addNeighbor(speakerV4, speakerASN, neighborOpts{})
	r1.announce("198.51.100.0/24")
	r1.announce("0.0.0.0/0")
	s := newSpeaker(t, Options{})
	st := State{
		ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID),
		Peers: []Peer{r1.peerFor("r1"), r2.peerFor("r2")},
		Paths: []Path{path("192.0.2.40/32", to("r1", "r2"))},
	}
	mustApply(t, s, st)
	waitEstablished(t, s, "r1")
	waitEstablished(t, s, "r2")
	// Wait until the speaker has received r1's routes.
	eventually(t, waitLong, "speaker to receive r1's routes", func() error {
		var received uint64
		_ = s.g.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: "127.0.0.6"}, func(p *api.Peer) {
			for _, af := range p.AfiSafis {
				if af.State != nil {
					received += af.State.Received
				}
			}
		})
		if received != 2 {
			return fmt.Errorf("received %d", received)
		}
		return nil
	})
	// A marker announced afterwards: once r2 has it, anything leaked earlier
	// would have arrived too.
	st.Paths = append(st.Paths, path("192.0.2.41/32", to("r2")))
	mustApply(t, s, st)
	r2.waitRoutes(speakerV4, "192.0.2.40/32", "192.0.2.41/32")
	r1.waitRoutes(speakerV4, "192.0.2.40/32")

	for _, fam := range []bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC} {
		err := s.g.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam},
			func(nlri bgp.NLRI, paths []*apiutil.Path) {
				for _, p := range paths {
					if p.PeerAddress.IsValid() {
						t.Errorf("speaker RIB holds %v from peer %v", nlri, p.PeerAddress)
					}
				}
			})
		if err != nil {
			t.Fatalf("ListPath: %v", err)
		}
	}
}

func diffCounts(before, after map[string]int) map[string]int {
	d := make(map[string]int)
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}
