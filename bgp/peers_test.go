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
)

// Component tests of sessions: passwords, graceful restart, peer removal
// and moves, invalid peers, listening. Helpers are in router_test.go and
// speaker_test.go.

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
