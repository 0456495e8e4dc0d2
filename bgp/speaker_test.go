package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

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
	if d := diffCounts(before, s.g.callCounts()); !equalCounts(d, map[string]int{"AddPath": 1}) {
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
	if d := diffCounts(before, s.g.callCounts()); !equalCounts(d, map[string]int{"AddDefinedSet": 1, "AddPolicy": 1, "AddPath": 1}) {
		t.Errorf("first use of a profile made GoBGP calls %v", d)
	}
	// Its last use going away removes the statement again.
	before = s.g.callCounts()
	st.Paths[0] = path("192.0.2.20/32", map[string]Attributes{"e": profE, "i": profI})
	mustApply(t, s, st)
	if d := diffCounts(before, s.g.callCounts()); !equalCounts(d, map[string]int{"AddPath": 1, "DeletePolicy": 1, "DeleteStatement": 1, "DeleteDefinedSet": 1}) {
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

// A wrong TCP-MD5 password never establishes (the kernel drops the
// segments); the right one does; fixing the password resets only that
// session.
func TestMD5Password(t *testing.T) {
	good := startRouter(t, "127.0.0.8", 65050, "198.51.100.9")
	good.addNeighbor(speakerV4, speakerASN, neighborOpts{password: "s3cret-a"})
	bad := startRouter(t, "127.0.0.9", 65051, "198.51.100.10")
	bad.addNeighbor(speakerV4, speakerASN, neighborOpts{password: "s3cret-b"})
	s := newSpeaker(t, Options{})

	pg, pb := good.peerFor("good"), bad.peerFor("bad")
	pg.Password, pb.Password = "s3cret-a", "wrong"
	st := State{
		ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID),
		Peers: []Peer{pg, pb},
		Paths: []Path{path("192.0.2.50/32", to("good", "bad"))},
	}
	failures := tcpExtCounter(t, "TCPMD5Failure")
	mustApply(t, s, st)
	waitEstablished(t, s, "good")
	good.waitRoutes(speakerV4, "192.0.2.50/32")
	// Proof that the speaker tried with the wrong key and the kernel refused.
	eventually(t, waitLong, "kernel to reject a segment with a wrong MD5 signature", func() error {
		if n := tcpExtCounter(t, "TCPMD5Failure"); n <= failures {
			return fmt.Errorf("TCPMD5Failure still %d", n)
		}
		return nil
	})
	if ps := peerStatus(t, s, "bad"); ps.State == StateEstablished {
		t.Fatalf("session with a wrong password is Established")
	}
	if n := bad.neighbor(speakerV4); n.State.Messages.Received.Open != 0 {
		t.Fatalf("router received an OPEN over a connection with a wrong password")
	}

	opens := good.receivedOpens(speakerV4)
	st.Peers[1].Password = "s3cret-b"
	mustApply(t, s, st)
	waitEstablished(t, s, "bad")
	bad.waitRoutes(speakerV4, "192.0.2.50/32")
	if d := good.receivedOpens(speakerV4) - opens; d != 0 {
		t.Errorf("changing another peer's password restarted the good session %d times", d)
	}

	// A timer change resets that session only.
	opensBad := bad.receivedOpens(speakerV4)
	st.Peers[1].HoldTime = 30 * time.Second
	mustApply(t, s, st)
	eventually(t, waitLong, "bad session to restart with the new hold time", func() error {
		if bad.receivedOpens(speakerV4) == opensBad {
			return errors.New("no new OPEN yet")
		}
		return bad.established(speakerV4)
	})
	if n := bad.neighbor(speakerV4); n.Timers.State.NegotiatedHoldTime != 30 {
		t.Errorf("negotiated hold time %d, want 30", n.Timers.State.NegotiatedHoldTime)
	}
	if d := good.receivedOpens(speakerV4) - opens; d != 0 {
		t.Errorf("changing another peer's timers restarted the good session")
	}
}

// Graceful restart: the capability is negotiated with our restart time;
// Stop(graceful) leaves the routes at the router (stale) and a new speaker
// takes over without the router losing them; Stop(non-graceful) withdraws.
func TestGracefulRestart(t *testing.T) {
	r := startRouter(t, "127.0.0.10", 65060, "198.51.100.11")
	r.addNeighbor(speakerV4, speakerASN, neighborOpts{gracefulHelper: true})
	p := r.peerFor("tor")
	p.GracefulRestart = GracefulRestart{Enabled: true, RestartTime: 45 * time.Second}
	st := State{
		ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID), Peers: []Peer{p},
		Paths: []Path{path("192.0.2.60/32", to("tor")), path("192.0.2.61/32", to("tor"))},
	}
	s1 := newSpeaker(t, Options{})
	mustApply(t, s1, st)
	waitEstablished(t, s1, "tor")
	r.waitRoutes(speakerV4, "192.0.2.60/32", "192.0.2.61/32")
	if n := r.neighbor(speakerV4); n.GracefulRestart.PeerRestartTime != 45 {
		t.Fatalf("router sees restart time %d, want 45", n.GracefulRestart.PeerRestartTime)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s1.Stop(ctx, true); err != nil {
		t.Fatalf("Stop(graceful): %v", err)
	}
	eventually(t, waitLong, "router to notice the speaker is gone", func() error {
		if r.established(speakerV4) == nil {
			return errors.New("still Established")
		}
		return nil
	})
	got := r.routes(speakerV4)
	if len(got) != 2 {
		t.Fatalf("after a graceful stop the router holds %v, want both routes", keys(got))
	}
	for pfx, rt := range got {
		if !rt.Stale {
			t.Errorf("%v not marked stale during graceful restart", pfx)
		}
	}

	// The restarted speaker announces only one of them: after its
	// End-of-RIB the router drops the other, keeps this one (fresh).
	s2 := newSpeaker(t, Options{})
	st.Paths = st.Paths[:1]
	mustApply(t, s2, st)
	waitEstablished(t, s2, "tor")
	eventually(t, waitLong, "router to refresh 192.0.2.60 and flush 192.0.2.61", func() error {
		got := r.routes(speakerV4)
		rt, ok := got[netip.MustParsePrefix("192.0.2.60/32")]
		if len(got) != 1 || !ok || rt.Stale {
			return fmt.Errorf("router holds %v", got)
		}
		return nil
	})

	if err := s2.Stop(ctx, false); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	eventually(t, waitLong, "router to withdraw after a non-graceful stop", func() error {
		if got := r.routes(speakerV4); len(got) != 0 {
			return fmt.Errorf("router still holds %v", keys(got))
		}
		return nil
	})
}

// Removing a peer sends it a Cease (the router drops our routes) and
// leaves the other peer alone.
func TestRemovePeer(t *testing.T) {
	r1 := startRouter(t, "127.0.0.11", 65070, "198.51.100.12")
	r1.addNeighbor(speakerV4, speakerASN, neighborOpts{})
	r2 := startRouter(t, "127.0.0.12", 65071, "198.51.100.13")
	r2.addNeighbor(speakerV4, speakerASN, neighborOpts{})
	s := newSpeaker(t, Options{})
	st := State{
		ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID),
		Peers: []Peer{r1.peerFor("r1"), r2.peerFor("r2")},
		Paths: []Path{path("192.0.2.70/32", to("r1", "r2"))},
	}
	mustApply(t, s, st)
	waitEstablished(t, s, "r1")
	waitEstablished(t, s, "r2")
	r1.waitRoutes(speakerV4, "192.0.2.70/32")
	r2.waitRoutes(speakerV4, "192.0.2.70/32")
	opens := r2.receivedOpens(speakerV4)

	st.Peers = st.Peers[1:]
	st.Paths = []Path{path("192.0.2.70/32", to("r2"))}
	mustApply(t, s, st)
	eventually(t, waitLong, "r1 to drop the speaker's routes", func() error {
		if got := r1.routes(speakerV4); len(got) != 0 {
			return fmt.Errorf("r1 holds %v", keys(got))
		}
		return nil
	})
	status, err := s.Status(context.Background())
	if err != nil || len(status) != 1 || status[0].Name != "r2" {
		t.Errorf("Status = %+v, %v; want only r2", status, err)
	}
	if d := r2.receivedOpens(speakerV4) - opens; d != 0 {
		t.Errorf("removing r1 reset r2's session")
	}
	if n := len(s.st.stmts); n != 1 {
		t.Errorf("%d export statements left, want 1", n)
	}
}

// Invalid input is reported while the valid rest is applied.
func TestApplyReportsInvalidInput(t *testing.T) {
	r := startRouter(t, "127.0.0.13", 65080, "198.51.100.14")
	r.addNeighbor(speakerV4, speakerASN, neighborOpts{})
	s := newSpeaker(t, Options{})
	if err := s.Apply(context.Background(), State{ASN: speakerASN, RouterID: netip.MustParseAddr("::1")}); err == nil {
		t.Fatal("an IPv6 router ID was accepted")
	}
	err := s.Apply(context.Background(), State{
		ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID),
		Peers: []Peer{r.peerFor("ok"), {Name: "no-asn", Address: netip.MustParseAddr("127.0.0.99")}},
		Paths: []Path{
			path("192.0.2.80/32", to("ok")),
			path("192.0.2.81/32", to("ok", "no-asn")), // invalid peer: skipped silently, reported once
			path("192.0.2.82/32", to("ghost")),
			path("192.0.2.83/32", map[string]Attributes{"ok": {LocalPref: u32(0)}}),
			{Prefix: netip.MustParsePrefix("192.0.2.85/24"), Peers: to("ok")},
		},
	})
	if err == nil {
		t.Fatal("no error for invalid input")
	}
	for _, want := range []string{`peer "no-asn"`, `unknown peer "ghost"`, "local preference 0", "host bits"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	waitEstablished(t, s, "ok")
	r.waitRoutes(speakerV4, "192.0.2.80/32", "192.0.2.81/32")

	// Duplicate prefixes, new and already applied: the first one wins.
	err = s.Apply(context.Background(), State{
		ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID), Peers: []Peer{r.peerFor("ok")},
		Paths: []Path{
			path("192.0.2.80/32", to("ok")), path("192.0.2.80/32", nil),
			path("192.0.2.86/32", to("ok")), path("192.0.2.86/32", nil),
		},
	})
	if err == nil || strings.Count(err.Error(), "duplicate prefix") != 2 {
		t.Errorf("duplicates: error %v", err)
	}
	r.waitRoutes(speakerV4, "192.0.2.80/32", "192.0.2.86/32")

	// A bad edit of a working peer keeps the session and its routes.
	opens := r.receivedOpens(speakerV4)
	bad := r.peerFor("ok")
	bad.HoldTime = time.Second
	err = s.Apply(context.Background(), State{
		ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID), Peers: []Peer{bad},
		Paths: []Path{path("192.0.2.80/32", to("ok")), path("192.0.2.86/32", to("ok"))},
	})
	if err == nil || !strings.Contains(err.Error(), "keeping the previous configuration") {
		t.Errorf("bad peer edit: error %v", err)
	}
	if ps := peerStatus(t, s, "ok"); ps.State != StateEstablished || r.receivedOpens(speakerV4) != opens {
		t.Errorf("bad peer edit disturbed the session: %+v", ps)
	}
	r.waitRoutes(speakerV4, "192.0.2.80/32", "192.0.2.86/32")
}

// Changing the ASN restarts BGP under the new ASN with the same peers and
// paths; moving a peer to another address moves its routes.
func TestASNChangeAndPeerMove(t *testing.T) {
	r1 := startRouter(t, "127.0.0.16", 65100, "198.51.100.16")
	r1.addNeighbor(speakerV4, speakerASN, neighborOpts{})
	s := newSpeaker(t, Options{})
	attrs := map[string]Attributes{"tor": {Communities: []uint32{comm("65000:7")}}}
	st := State{
		ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID), Peers: []Peer{r1.peerFor("tor")},
		Paths: []Path{path("192.0.2.100/32", attrs)},
	}
	mustApply(t, s, st)
	waitEstablished(t, s, "tor")
	r1.waitRoutes(speakerV4, "192.0.2.100/32")

	// The router learns the new ASN first (one neighbor per address).
	if err := r1.srv.DeletePeer(context.Background(), &api.DeletePeerRequest{Address: speakerV4.String()}); err != nil {
		t.Fatal(err)
	}
	r1.addNeighbor(speakerV4, 64700, neighborOpts{})
	st.ASN = 64700
	mustApply(t, s, st)
	waitEstablished(t, s, "tor")
	eventually(t, waitLong, "route with the new AS path", func() error {
		rt, ok := r1.routes(speakerV4)[netip.MustParsePrefix("192.0.2.100/32")]
		if !ok || !slices.Equal(rt.ASPath, []uint32{64700}) {
			return fmt.Errorf("route %v (present %v)", rt, ok)
		}
		return nil
	})

	r2 := startRouter(t, "127.0.0.17", 65100, "198.51.100.17")
	r2.addNeighbor(speakerV4, 64700, neighborOpts{})
	moved := r2.peerFor("tor")
	st.Peers = []Peer{moved}
	mustApply(t, s, st)
	waitEstablished(t, s, "tor")
	got := r2.waitRoutes(speakerV4, "192.0.2.100/32")
	if rt := got[netip.MustParsePrefix("192.0.2.100/32")]; !slices.Equal(rt.Communities, []uint32{comm("65000:7")}) {
		t.Errorf("moved peer got %v", rt)
	}
	eventually(t, waitLong, "old router to lose the route", func() error {
		if got := r1.routes(speakerV4); len(got) != 0 {
			return fmt.Errorf("old router holds %v", keys(got))
		}
		return nil
	})
}

// Listening is off by default (GoBGP's -1) and on when asked.
func TestListenPort(t *testing.T) {
	s := newSpeaker(t, Options{})
	mustApply(t, s, State{ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID)})
	g, err := s.g.srv.GetBgp(context.Background(), &api.GetBgpRequest{})
	if err != nil || g.Global.ListenPort != -1 {
		t.Errorf("default listen port = %v (%v), want -1 (off)", g.GetGlobal().GetListenPort(), err)
	}

	port := freePort(t, netip.MustParseAddr("127.0.0.14"))
	s2 := newSpeaker(t, Options{ListenPort: int32(port), ListenAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.14")}})
	mustApply(t, s2, State{ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID)})
	g, err = s2.g.srv.GetBgp(context.Background(), &api.GetBgpRequest{})
	if err != nil || g.Global.ListenPort != int32(port) {
		t.Errorf("listen port = %v (%v), want %d", g.GetGlobal().GetListenPort(), err, port)
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

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
