package bgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/config/oc"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Component-test helpers: "routers" are real GoBGP servers in the test
// process, listening on loopback addresses (the whole 127.0.0.0/8 is local
// on Linux, so each router gets its own 127.0.0.x without root). The speaker
// dials them from 127.0.0.1 (IPv4) or ::1 (IPv6).

const (
	speakerASN      = 4200000001 // 4-byte ASN on purpose
	speakerRouterID = "192.0.2.1"
	waitLong        = 60 * time.Second // generous: the test machine is loaded
)

var speakerV4 = netip.MustParseAddr("127.0.0.1")

func testLogger(t testing.TB) logr.Logger {
	if os.Getenv("BGPLB_TEST_LOG") == "" {
		return logr.Discard()
	}
	return funcr.New(func(prefix, args string) {
		fmt.Fprintf(os.Stderr, "%s %s %s\n", time.Now().Format("15:04:05.000"), prefix, args)
	}, funcr.Options{Verbosity: 4})
}

// newSpeaker returns a speaker stopped (with Cease) at test end.
func newSpeaker(t testing.TB, opts Options) *Speaker {
	t.Helper()
	opts.Logger = testLogger(t)
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Stop(ctx, false)
	})
	return s
}

// eventually polls cond until it returns nil or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustApply(t testing.TB, s *Speaker, st State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Apply(ctx, st); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// router is a GoBGP server standing in for a ToR router.
type router struct {
	t    testing.TB
	srv  *server.BgpServer
	addr netip.Addr
	port uint16
	asn  uint32
}

func freePort(t testing.TB, addr netip.Addr) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatalf("finding a free port on %v: %v", addr, err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func allFamilies() []uint32 {
	return []uint32{
		uint32(oc.AfiSafiTypeToIntMap[oc.AFI_SAFI_TYPE_IPV4_UNICAST]),
		uint32(oc.AfiSafiTypeToIntMap[oc.AFI_SAFI_TYPE_IPV6_UNICAST]),
	}
}

// startRouter starts a router listening on addr with a free port.
func startRouter(t testing.TB, addr string, asn uint32, routerID string) *router {
	t.Helper()
	a := netip.MustParseAddr(addr)
	var lastErr error
	for range 5 {
		port := freePort(t, a)
		srv := server.NewBgpServer()
		go srv.Serve()
		err := srv.StartBgp(context.Background(), &api.StartBgpRequest{Global: &api.Global{
			Asn: asn, RouterId: routerID, ListenPort: int32(port),
			ListenAddresses: []string{addr}, Families: allFamilies(),
		}})
		if err != nil { // the port was taken in between: try another one
			lastErr = err
			srv.Stop()
			continue
		}
		r := &router{t: t, srv: srv, addr: a, port: port, asn: asn}
		t.Cleanup(srv.Stop)
		return r
	}
	t.Fatalf("starting router on %s: %v", addr, lastErr)
	return nil
}

type neighborOpts struct {
	password       string
	gracefulHelper bool
}

// addNeighbor configures the speaker as a passive neighbor of the router.
func (r *router) addNeighbor(speaker netip.Addr, asn uint32, o neighborOpts) {
	r.t.Helper()
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if speaker.Is6() {
		fam.Afi = api.Family_AFI_IP6
	}
	af := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}
	p := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: speaker.String(), PeerAsn: asn, AuthPassword: o.password},
		Transport: &api.Transport{PassiveMode: true},
		AfiSafis:  []*api.AfiSafi{af},
	}
	if o.gracefulHelper {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, HelperOnly: true, RestartTime: 120}
		af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	}
	if err := r.srv.AddPeer(context.Background(), &api.AddPeerRequest{Peer: p}); err != nil {
		r.t.Fatalf("router %v: adding neighbor: %v", r.addr, err)
	}
}

// peerFor builds the speaker-side Peer for this router.
func (r *router) peerFor(name string) Peer {
	return Peer{Name: name, Address: r.addr, ASN: r.asn, Port: r.port, ConnectRetryTime: time.Second}
}

// neighbor returns the router's view of the speaker session.
func (r *router) neighbor(speaker netip.Addr) *api.Peer {
	var out *api.Peer
	_ = r.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: speaker.String()}, func(p *api.Peer) { out = p })
	return out
}

func (r *router) established(speaker netip.Addr) error {
	n := r.neighbor(speaker)
	if n == nil {
		return fmt.Errorf("router %v has no neighbor %v", r.addr, speaker)
	}
	if n.State.SessionState != api.PeerState_SESSION_STATE_ESTABLISHED {
		return fmt.Errorf("router %v: session with %v is %v", r.addr, speaker, n.State.SessionState)
	}
	return nil
}

// receivedUpdates is the number of UPDATE messages the router got from the speaker.
func (r *router) receivedUpdates(speaker netip.Addr) uint64 {
	if n := r.neighbor(speaker); n != nil && n.State.Messages != nil && n.State.Messages.Received != nil {
		return n.State.Messages.Received.Update
	}
	return 0
}

// receivedOpens counts OPEN messages from the speaker: +1 per session (re)start.
func (r *router) receivedOpens(speaker netip.Addr) uint64 {
	if n := r.neighbor(speaker); n != nil && n.State.Messages != nil && n.State.Messages.Received != nil {
		return n.State.Messages.Received.Open
	}
	return 0
}

// route is a path as the router received it.
type route struct {
	NextHop     netip.Addr
	ASPath      []uint32
	Communities []uint32
	Large       []LargeCommunity
	LocalPref   *uint32
	Stale       bool
}

func (rt route) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nh=%v aspath=%v", rt.NextHop, rt.ASPath)
	if len(rt.Communities) > 0 {
		var cs []string
		for _, c := range rt.Communities {
			cs = append(cs, FormatCommunity(c))
		}
		fmt.Fprintf(&b, " comm=%v", cs)
	}
	if len(rt.Large) > 0 {
		fmt.Fprintf(&b, " large=%v", rt.Large)
	}
	if rt.LocalPref != nil {
		fmt.Fprintf(&b, " lp=%d", *rt.LocalPref)
	}
	if rt.Stale {
		b.WriteString(" stale")
	}
	return b.String()
}

// routes returns what the router holds from the speaker (its Adj-RIB-In for
// that neighbor: exactly what the speaker sent, before router policy).
func (r *router) routes(speaker netip.Addr) map[netip.Prefix]route {
	family := bgp.RF_IPv4_UC
	if speaker.Is6() {
		family = bgp.RF_IPv6_UC
	}
	out := make(map[netip.Prefix]route)
	err := r.srv.ListPath(apiutil.ListPathRequest{
		TableType: api.TableType_TABLE_TYPE_ADJ_IN, Name: speaker.String(), Family: family,
	}, func(nlri bgp.NLRI, paths []*apiutil.Path) {
		pfx, ok := nlri.(*bgp.IPAddrPrefix)
		if !ok || len(paths) == 0 {
			return
		}
		out[pfx.Prefix] = decodeRoute(paths[0])
	})
	if err != nil {
		r.t.Logf("router %v: listing paths: %v", r.addr, err)
	}
	return out
}

func decodeRoute(p *apiutil.Path) route {
	rt := route{Stale: p.Stale}
	for _, a := range p.Attrs {
		switch v := a.(type) {
		case *bgp.PathAttributeNextHop:
			rt.NextHop = v.Value
		case *bgp.PathAttributeMpReachNLRI:
			rt.NextHop = v.Nexthop
		case *bgp.PathAttributeAsPath:
			for _, seg := range v.Value {
				rt.ASPath = append(rt.ASPath, seg.GetAS()...)
			}
		case *bgp.PathAttributeCommunities:
			rt.Communities = slices.Clone(v.Value)
		case *bgp.PathAttributeLargeCommunities:
			for _, c := range v.Values {
				rt.Large = append(rt.Large, LargeCommunity{c.ASN, c.LocalData1, c.LocalData2})
			}
		case *bgp.PathAttributeLocalPref:
			lp := v.Value
			rt.LocalPref = &lp
		}
	}
	return rt
}

// waitRoutes waits until the router holds exactly the given prefixes from
// the speaker and returns them.
func (r *router) waitRoutes(speaker netip.Addr, want ...string) map[netip.Prefix]route {
	r.t.Helper()
	var got map[netip.Prefix]route
	eventually(r.t, waitLong, fmt.Sprintf("router %v to hold %v", r.addr, want), func() error {
		got = r.routes(speaker)
		if len(got) != len(want) {
			return fmt.Errorf("has %d routes: %v", len(got), keys(got))
		}
		for _, w := range want {
			if _, ok := got[netip.MustParsePrefix(w)]; !ok {
				return fmt.Errorf("missing %s, has %v", w, keys(got))
			}
		}
		return nil
	})
	return got
}

// announce makes the router originate a prefix towards its neighbors.
func (r *router) announce(prefix string) {
	r.t.Helper()
	p := netip.MustParsePrefix(prefix)
	family := bgp.RF_IPv4_UC
	if p.Addr().Is6() {
		family = bgp.RF_IPv6_UC
	}
	nlri, _ := bgp.NewIPAddrPrefix(p)
	nh, _ := bgp.NewPathAttributeNextHop(r.addr)
	_, err := r.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{
		Family: family, Nlri: nlri,
		Attrs: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), nh},
	}}})
	if err != nil {
		r.t.Fatalf("router %v: announcing %s: %v", r.addr, prefix, err)
	}
}

func keys[V any](m map[netip.Prefix]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k.String())
	}
	slices.Sort(out)
	return out
}

// peerStatus returns the speaker's status of one peer.
func peerStatus(t testing.TB, s *Speaker, name string) PeerStatus {
	t.Helper()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	for _, p := range st {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("Status has no peer %q: %+v", name, st)
	return PeerStatus{}
}

func waitEstablished(t testing.TB, s *Speaker, name string) PeerStatus {
	t.Helper()
	var ps PeerStatus
	eventually(t, waitLong, "peer "+name+" Established", func() error {
		ps = peerStatus(t, s, name)
		if ps.State != StateEstablished {
			return fmt.Errorf("state %s (last error %q)", ps.State, ps.LastError)
		}
		return nil
	})
	return ps
}

// tcpExtCounter reads a TcpExt counter of this network namespace.
func tcpExtCounter(t testing.TB, name string) uint64 {
	t.Helper()
	data, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		t.Fatalf("reading /proc/net/netstat: %v", err)
	}
	lines := strings.Split(string(data), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "TcpExt:") {
			continue
		}
		names := strings.Fields(lines[i])
		values := strings.Fields(lines[i+1])
		for j, n := range names {
			if n == name && j < len(values) {
				v, _ := strconv.ParseUint(values[j], 10, 64)
				return v
			}
		}
	}
	t.Fatalf("TcpExt counter %s not found", name)
	return 0
}

func u32(v uint32) *uint32 { return &v }

func lc(s string) LargeCommunity {
	c, err := ParseLargeCommunity(s)
	if err != nil {
		panic(err)
	}
	return c
}

func comm(s string) uint32 {
	c, err := ParseCommunity(s)
	if err != nil {
		panic(err)
	}
	return c
}
