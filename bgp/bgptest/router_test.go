package bgptest_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp"
	"github.com/bgplb/bgplb/bgp/bgptest"
)

const (
	speakerASN = 4200000001
	waitLong   = 60 * time.Second // the test machine is shared and loaded
)

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startRouter(t *testing.T, addr string, asn uint32) *bgptest.Router {
	t.Helper()
	r, err := bgptest.Start(bgptest.Options{ASN: asn, Address: netip.MustParseAddr(addr)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func startSpeaker(t *testing.T) *bgp.Speaker {
	t.Helper()
	s, err := bgp.New(bgp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(ctx, false)
	})
	return s
}

func apply(t *testing.T, s *bgp.Speaker, st bgp.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := s.Apply(ctx, st); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// The router records what a real speaker sends: prefixes, next hop, AS
// path, communities, large communities, and every update in order.
func TestRouterRecordsRoutesAndUpdates(t *testing.T) {
	r := startRouter(t, "127.0.0.21", 65001)
	speaker := netip.MustParseAddr("127.0.0.1")
	if err := r.AddNeighbor(bgptest.Neighbor{Address: speaker, ASN: speakerASN, GracefulRestart: true}); err != nil {
		t.Fatal(err)
	}
	s := startSpeaker(t)
	peer := bgp.Peer{Name: "r", Address: r.Address(), ASN: r.ASN(), Port: r.Port(), SourceAddress: speaker,
		ConnectRetryTime: time.Second, GracefulRestart: bgp.GracefulRestart{Enabled: true, RestartTime: 90 * time.Second}}
	prefix := netip.MustParsePrefix("192.0.2.10/32")
	attrs := bgp.Attributes{Communities: []uint32{65000<<16 | 100, 0xFFFF0000}, LargeCommunities: []bgp.LargeCommunity{{GlobalAdmin: 65000, LocalData1: 1, LocalData2: 2}}}
	apply(t, s, bgp.State{ASN: speakerASN, RouterID: netip.MustParseAddr("192.0.2.1"), Peers: []bgp.Peer{peer},
		Paths: []bgp.Path{{Prefix: prefix, Peers: map[string]bgp.Attributes{"r": attrs}}}})

	eventually(t, "the route", func() bool { _, ok := r.Route(speaker, prefix); return ok })
	rt, _ := r.Route(speaker, prefix)
	if rt.NextHop != speaker || rt.From != speaker || !slices.Equal(rt.ASPath, []uint32{speakerASN}) {
		t.Errorf("route = %+v", rt)
	}
	if !rt.HasCommunity("65000:100") || !rt.HasCommunity("65535:0") || rt.HasCommunity("65000:1") {
		t.Errorf("communities = %v", rt.CommunityStrings())
	}
	if !slices.Equal(rt.LargeCommunityStrings(), []string{"65000:1:2"}) || !rt.HasLargeCommunity("65000:1:2") {
		t.Errorf("large communities = %v", rt.LargeCommunityStrings())
	}
	if rt.LocalPref != nil {
		t.Errorf("eBGP route carries LOCAL_PREF %d", *rt.LocalPref)
	}
	sess, ok := r.Session(speaker)
	if !ok || !sess.Established() || !sess.GracefulRestart || sess.RestartTime != 90*time.Second ||
		sess.RemoteASN != speakerASN || sess.RemoteRouterID != "192.0.2.1" || sess.ReceivedOpens == 0 {
		t.Errorf("session = %+v", sess)
	}
	if got := r.Prefixes(speaker); !slices.Equal(got, []string{"192.0.2.10/32"}) {
		t.Errorf("prefixes = %v", got)
	}

	// Withdraw: gone from the table, recorded in order.
	apply(t, s, bgp.State{ASN: speakerASN, RouterID: netip.MustParseAddr("192.0.2.1"), Peers: []bgp.Peer{peer}})
	eventually(t, "the withdrawal", func() bool { return len(r.RoutesFrom(speaker)) == 0 })
	// The update log may record the withdrawal a moment after the table
	// drops the route (seen under load in CI).
	eventually(t, "the withdrawal's record", func() bool { return len(r.UpdatesFor(prefix)) >= 2 })
	ups := r.UpdatesFor(prefix)
	if len(ups) != 2 || ups[0].Withdraw || !ups[1].Withdraw || !ups[0].HasCommunity("65535:0") {
		t.Errorf("updates = %+v", ups)
	}
}

// IPv6 over ::1 and iBGP with local preference.
func TestRouterIPv6AndLocalPref(t *testing.T) {
	r := startRouter(t, "::1", speakerASN)
	speaker := netip.MustParseAddr("::1")
	if err := r.AddNeighbor(bgptest.Neighbor{Address: speaker, ASN: speakerASN}); err != nil {
		t.Fatal(err)
	}
	s := startSpeaker(t)
	lp := uint32(250)
	prefix := netip.MustParsePrefix("2001:db8:1::10/128")
	apply(t, s, bgp.State{ASN: speakerASN, RouterID: netip.MustParseAddr("192.0.2.1"),
		Peers: []bgp.Peer{{Name: "r6", Address: r.Address(), ASN: r.ASN(), Port: r.Port(), SourceAddress: speaker, ConnectRetryTime: time.Second}},
		Paths: []bgp.Path{{Prefix: prefix, Peers: map[string]bgp.Attributes{"r6": {LocalPref: &lp}}}}})
	eventually(t, "the IPv6 route", func() bool { _, ok := r.Route(speaker, prefix); return ok })
	rt, _ := r.Route(speaker, prefix)
	if rt.NextHop != speaker || rt.LocalPref == nil || *rt.LocalPref != 250 || len(rt.ASPath) != 0 {
		t.Errorf("route = %+v", rt)
	}
}

func TestRouterOptions(t *testing.T) {
	if _, err := bgptest.Start(bgptest.Options{ASN: 1, Address: netip.MustParseAddr("192.0.2.1")}); err == nil {
		t.Error("a non-loopback address was accepted")
	}
	if _, err := bgptest.Start(bgptest.Options{}); err == nil {
		t.Error("no ASN was accepted")
	}
	r := startRouter(t, "127.0.0.22", 65001)
	if r.Port() == 0 || r.RouterID() != netip.MustParseAddr("127.0.0.22") {
		t.Errorf("port %d router ID %v", r.Port(), r.RouterID())
	}
	if _, ok := r.Session(netip.MustParseAddr("127.0.0.1")); ok {
		t.Error("session with an unknown neighbor")
	}
	if err := r.Announce(netip.MustParsePrefix("198.51.100.0/24"), netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("mixed-family announcement accepted")
	}
}
