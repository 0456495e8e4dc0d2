// Package bgptest runs a real GoBGP server in the test process that stands
// in for a router: it listens on a loopback address and a free port, accepts
// sessions from the neighbors it is told about, and records what they send
// (prefixes, next hops, AS paths, communities, large communities, local
// preference, and every UPDATE in order) so tests can assert what a router
// would see. It can also originate routes, to check that a speaker does not
// accept them. No root is needed: the whole 127.0.0.0/8 and ::1 are local on
// Linux, so several routers can run side by side on 127.0.0.x.
//
// It lives under bgp/ because only that tree may import GoBGP; it does not
// import package bgp, so bgp's own tests can use it too.
package bgptest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/config/oc"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Options configure a Router.
type Options struct {
	// ASN of the router (4-byte ASNs work). Required.
	ASN uint32
	// Address to listen on; must be a loopback address. Default 127.0.0.1.
	Address netip.Addr
	// Port to listen on; 0 picks a free one.
	Port uint16
	// RouterID is the BGP identifier; default: Address when it is IPv4,
	// else 192.0.2.254.
	RouterID netip.Addr
	// Logger receives GoBGP's logs; default: discarded.
	Logger *slog.Logger
}

// Neighbor is a speaker the router accepts a session from. The router is
// passive: it never connects out, so the speaker must dial it.
type Neighbor struct {
	// Address the speaker connects from.
	Address netip.Addr
	// ASN of the speaker; equal to the router's for iBGP.
	ASN uint32
	// Password enables TCP-MD5 on the session.
	Password string
	// GracefulRestart makes the router a graceful-restart helper: when the
	// speaker goes away without a Cease, the router keeps its routes
	// (marked stale) for the restart time the speaker advertised.
	GracefulRestart bool
	// HoldTime the router proposes; 0 means GoBGP's default (90s).
	HoldTime time.Duration
}

// Router is a running in-process GoBGP router.
type Router struct {
	srv      *server.BgpServer
	addr     netip.Addr
	port     uint16
	asn      uint32
	routerID netip.Addr
	cancel   context.CancelFunc

	mu      sync.Mutex
	updates []Update
	stopped bool
}

// Start starts a router.
func Start(opts Options) (*Router, error) {
	if opts.ASN == 0 {
		return nil, errors.New("bgptest: ASN is required")
	}
	if !opts.Address.IsValid() {
		opts.Address = netip.MustParseAddr("127.0.0.1")
	}
	if !opts.Address.IsLoopback() {
		return nil, fmt.Errorf("bgptest: %v is not a loopback address", opts.Address)
	}
	if !opts.RouterID.IsValid() {
		opts.RouterID = netip.MustParseAddr("192.0.2.254")
		if opts.Address.Is4() {
			opts.RouterID = opts.Address
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var lastErr error
	for range 5 {
		port := opts.Port
		if port == 0 {
			p, err := freePort(opts.Address)
			if err != nil {
				return nil, err
			}
			port = p
		}
		r, err := start(opts, port)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if opts.Port != 0 {
			break // a fixed port: retrying will not help
		}
	}
	return nil, lastErr
}

func start(opts Options, port uint16) (*Router, error) {
	srv := server.NewBgpServer(server.LoggerOption(opts.Logger, nil))
	go srv.Serve()
	ctx := context.Background()
	fail := func(err error) (*Router, error) {
		srv.Stop()
		return nil, err
	}
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:             opts.ASN,
		RouterId:        opts.RouterID.String(),
		ListenPort:      int32(port),
		ListenAddresses: []string{opts.Address.String()},
		Families: []uint32{
			uint32(oc.AfiSafiTypeToIntMap[oc.AFI_SAFI_TYPE_IPV4_UNICAST]),
			uint32(oc.AfiSafiTypeToIntMap[oc.AFI_SAFI_TYPE_IPV6_UNICAST]),
		},
	}})
	if err != nil {
		return fail(fmt.Errorf("bgptest: starting router on %v:%d: %w", opts.Address, port, err))
	}
	// Send neighbors only the routes the test originates (Announce), never
	// what other neighbors sent, so that a router is a plain sink.
	if err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{
		Name: "bgptest-export",
		Statements: []*api.Statement{{
			Name:       "bgptest-export-local",
			Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
		}},
	}}); err != nil {
		return fail(fmt.Errorf("bgptest: adding export policy: %w", err))
	}
	if err := srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Direction:     api.PolicyDirection_POLICY_DIRECTION_EXPORT,
		Policies:      []*api.Policy{{Name: "bgptest-export"}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}}); err != nil {
		return fail(fmt.Errorf("bgptest: assigning export policy: %w", err))
	}
	r := &Router{srv: srv, addr: opts.Address, port: port, asn: opts.ASN, routerID: opts.RouterID}
	wctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if err := srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPathUpdate: r.record}, server.WatchUpdate(false, "", "")); err != nil {
		cancel()
		return fail(fmt.Errorf("bgptest: watching updates: %w", err))
	}
	return r, nil
}

func freePort(addr netip.Addr) (uint16, error) {
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		return 0, fmt.Errorf("bgptest: finding a free port on %v: %w", addr, err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port), nil
}

// Stop stops the router; its sessions get a Cease.
func (r *Router) Stop() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.stopped = true
	r.mu.Unlock()
	r.cancel()
	r.srv.Stop()
}

// Address is the address the router listens on (the BGPPeer address).
func (r *Router) Address() netip.Addr { return r.addr }

// Port is the TCP port the router listens on.
func (r *Router) Port() uint16 { return r.port }

// ASN is the router's ASN.
func (r *Router) ASN() uint32 { return r.asn }

// RouterID is the router's BGP identifier.
func (r *Router) RouterID() netip.Addr { return r.routerID }

// AddNeighbor accepts sessions from a speaker.
func (r *Router) AddNeighbor(n Neighbor) error {
	if !n.Address.IsValid() || n.ASN == 0 {
		return errors.New("bgptest: a neighbor needs an address and an ASN")
	}
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if n.Address.Is6() {
		fam.Afi = api.Family_AFI_IP6
	}
	af := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}
	p := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.ASN, AuthPassword: n.Password},
		Transport: &api.Transport{PassiveMode: true, LocalAddress: r.addr.String()},
		AfiSafis:  []*api.AfiSafi{af},
	}
	if n.HoldTime > 0 {
		hold := uint64((n.HoldTime + time.Second - 1) / time.Second)
		p.Timers = &api.Timers{Config: &api.TimersConfig{HoldTime: hold, KeepaliveInterval: max(hold/3, 1)}}
	}
	if n.GracefulRestart {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, HelperOnly: true, RestartTime: 120}
		af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	}
	if err := r.srv.AddPeer(context.Background(), &api.AddPeerRequest{Peer: p}); err != nil {
		return fmt.Errorf("bgptest: router %v: adding neighbor %v: %w", r.addr, n.Address, err)
	}
	return nil
}

// RemoveNeighbor closes and forgets the session with a speaker.
func (r *Router) RemoveNeighbor(addr netip.Addr) error {
	if err := r.srv.DeletePeer(context.Background(), &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		return fmt.Errorf("bgptest: router %v: removing neighbor %v: %w", r.addr, addr, err)
	}
	return nil
}

// Session is the router's view of its session with a neighbor.
type Session struct {
	Neighbor netip.Addr
	// State is the BGP FSM state: Idle, Connect, Active, OpenSent,
	// OpenConfirm or Established.
	State string
	// RemoteASN and RemoteRouterID are what the speaker sent in its OPEN.
	RemoteASN      uint32
	RemoteRouterID string
	// GracefulRestart is whether the speaker advertised the graceful
	// restart capability; RestartTime is the time it asked for.
	GracefulRestart bool
	RestartTime     time.Duration
	// Messages received from the neighbor since the router started.
	ReceivedOpens, ReceivedUpdates, ReceivedNotifications uint64
	// DisconnectReason says why the last session ended, if it did.
	DisconnectReason string
}

// Established reports whether the session is Established.
func (s Session) Established() bool { return s.State == "Established" }

// Session returns the router's session with a neighbor (false if the
// neighbor is unknown).
func (r *Router) Session(neighbor netip.Addr) (Session, bool) {
	var out Session
	found := false
	_ = r.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: neighbor.String()}, func(p *api.Peer) {
		if p.State == nil {
			return
		}
		found = true
		out = Session{
			Neighbor:       neighbor,
			State:          sessionState(p.State.SessionState),
			RemoteASN:      p.State.PeerAsn,
			RemoteRouterID: p.State.RouterId,
		}
		if p.State.DisconnectReason != api.PeerState_DISCONNECT_REASON_UNSPECIFIED {
			out.DisconnectReason = p.State.DisconnectReason.String()
			if p.State.DisconnectMessage != "" {
				out.DisconnectReason += ": " + p.State.DisconnectMessage
			}
		}
		for _, c := range p.State.RemoteCap {
			if gr := c.GetGracefulRestart(); gr != nil {
				out.GracefulRestart = true
				out.RestartTime = time.Duration(gr.Time) * time.Second
			}
		}
		if m := p.State.Messages; m != nil && m.Received != nil {
			out.ReceivedOpens = m.Received.Open
			out.ReceivedUpdates = m.Received.Update
			out.ReceivedNotifications = m.Received.Notification
		}
	})
	return out, found
}

func sessionState(s api.PeerState_SessionState) string {
	switch s {
	case api.PeerState_SESSION_STATE_IDLE:
		return "Idle"
	case api.PeerState_SESSION_STATE_CONNECT:
		return "Connect"
	case api.PeerState_SESSION_STATE_ACTIVE:
		return "Active"
	case api.PeerState_SESSION_STATE_OPENSENT:
		return "OpenSent"
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return "OpenConfirm"
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return "Established"
	}
	return "Unknown"
}

// LargeCommunity is an RFC 8092 large community A:B:C.
type LargeCommunity struct {
	GlobalAdmin, LocalData1, LocalData2 uint32
}

// String formats it as A:B:C.
func (c LargeCommunity) String() string {
	return strconv.FormatUint(uint64(c.GlobalAdmin), 10) + ":" +
		strconv.FormatUint(uint64(c.LocalData1), 10) + ":" + strconv.FormatUint(uint64(c.LocalData2), 10)
}

// Route is a route as the router received it from a neighbor.
type Route struct {
	// From is the neighbor that sent it.
	From    netip.Addr
	Prefix  netip.Prefix
	NextHop netip.Addr
	// ASPath lists the ASNs of the AS_PATH in order.
	ASPath []uint32
	// Communities are RFC 1997 communities, as 32-bit values (65535:0 is
	// 0xFFFF0000).
	Communities []uint32
	// LargeCommunities are RFC 8092 large communities.
	LargeCommunities []LargeCommunity
	// LocalPref is set only when the route carried LOCAL_PREF (iBGP).
	LocalPref *uint32
	// Stale is set while the router keeps the route of a restarting
	// neighbor (graceful restart).
	Stale bool
}

// HasCommunity reports whether the route carries the community, written
// "AA:NN".
func (rt Route) HasCommunity(c string) bool {
	v, err := parseCommunity(c)
	return err == nil && slices.Contains(rt.Communities, v)
}

// HasLargeCommunity reports whether the route carries the large community,
// written "A:B:C".
func (rt Route) HasLargeCommunity(c string) bool {
	for _, lc := range rt.LargeCommunities {
		if lc.String() == c {
			return true
		}
	}
	return false
}

// CommunityStrings returns the communities as "AA:NN", sorted.
func (rt Route) CommunityStrings() []string {
	out := make([]string, len(rt.Communities))
	for i, c := range rt.Communities {
		out[i] = strconv.FormatUint(uint64(c>>16), 10) + ":" + strconv.FormatUint(uint64(c&0xFFFF), 10)
	}
	slices.Sort(out)
	return out
}

// LargeCommunityStrings returns the large communities as "A:B:C", sorted.
func (rt Route) LargeCommunityStrings() []string {
	out := make([]string, len(rt.LargeCommunities))
	for i, c := range rt.LargeCommunities {
		out[i] = c.String()
	}
	slices.Sort(out)
	return out
}

func parseCommunity(s string) (uint32, error) {
	var hi, lo uint64
	if _, err := fmt.Sscanf(s, "%d:%d", &hi, &lo); err != nil || hi > 0xFFFF || lo > 0xFFFF {
		return 0, fmt.Errorf("invalid community %q", s)
	}
	return uint32(hi<<16 | lo), nil
}

// Update is one route or withdrawal received, in arrival order.
type Update struct {
	Time     time.Time
	Withdraw bool
	Route
}

// Routes returns the routes the router currently holds from all neighbors
// (its Adj-RIB-In, IPv4 and IPv6), sorted by prefix then neighbor.
func (r *Router) Routes() []Route {
	var neighbors []netip.Addr
	_ = r.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.Conf != nil {
			if a, err := netip.ParseAddr(p.Conf.NeighborAddress); err == nil {
				neighbors = append(neighbors, a)
			}
		}
	})
	var out []Route
	for _, n := range neighbors {
		out = append(out, r.RoutesFrom(n)...)
	}
	sortRoutes(out)
	return out
}

// RoutesFrom returns the routes the router currently holds from one
// neighbor, sorted by prefix.
func (r *Router) RoutesFrom(neighbor netip.Addr) []Route {
	var out []Route
	for _, fam := range []bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC} {
		_ = r.srv.ListPath(apiutil.ListPathRequest{
			TableType: api.TableType_TABLE_TYPE_ADJ_IN,
			Name:      neighbor.String(),
			Family:    fam,
		}, func(_ bgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				if rt, ok := toRoute(p); ok && !p.Withdrawal {
					if !rt.From.IsValid() {
						rt.From = neighbor
					}
					out = append(out, rt)
				}
			}
		})
	}
	sortRoutes(out)
	return out
}

// Route returns the route for prefix from a neighbor, if the router holds
// one.
func (r *Router) Route(neighbor netip.Addr, prefix netip.Prefix) (Route, bool) {
	for _, rt := range r.RoutesFrom(neighbor) {
		if rt.Prefix == prefix {
			return rt, true
		}
	}
	return Route{}, false
}

// Prefixes returns the prefixes currently received from a neighbor, as
// strings, sorted: handy in assertions.
func (r *Router) Prefixes(neighbor netip.Addr) []string {
	routes := r.RoutesFrom(neighbor)
	out := make([]string, len(routes))
	for i, rt := range routes {
		out[i] = rt.Prefix.String()
	}
	return out
}

// Updates returns every route and withdrawal received so far, in order.
func (r *Router) Updates() []Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.updates)
}

// UpdateCount is how many routes and withdrawals the router has received
// so far. With UpdatesSince it lets a caller wait for the next updates
// without copying all of them.
func (r *Router) UpdateCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.updates)
}

// UpdatesSince returns the updates received after the first n, in order.
func (r *Router) UpdatesSince(n int) []Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n >= len(r.updates) {
		return nil
	}
	return slices.Clone(r.updates[max(n, 0):])
}

// UpdatesFor returns the updates received for one prefix, in order.
func (r *Router) UpdatesFor(prefix netip.Prefix) []Update {
	var out []Update
	for _, u := range r.Updates() {
		if u.Prefix == prefix {
			out = append(out, u)
		}
	}
	return out
}

func (r *Router) record(paths []*apiutil.Path, ts time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range paths {
		if rt, ok := toRoute(p); ok {
			r.updates = append(r.updates, Update{Time: ts, Withdraw: p.Withdrawal, Route: rt})
		}
	}
}

// Announce originates a route towards every neighbor of the router's
// family, e.g. to check that a speaker rejects what routers send.
func (r *Router) Announce(prefix netip.Prefix, nextHop netip.Addr) error {
	return r.originate(prefix, nextHop, false)
}

// Withdraw withdraws a route originated with Announce.
func (r *Router) Withdraw(prefix netip.Prefix, nextHop netip.Addr) error {
	return r.originate(prefix, nextHop, true)
}

func (r *Router) originate(prefix netip.Prefix, nextHop netip.Addr, withdraw bool) error {
	if prefix.Addr().Is4() != nextHop.Is4() {
		return fmt.Errorf("bgptest: prefix %v and next hop %v of different families", prefix, nextHop)
	}
	nlri, err := bgp.NewIPAddrPrefix(prefix.Masked())
	if err != nil {
		return fmt.Errorf("bgptest: prefix %v: %w", prefix, err)
	}
	nh, err := bgp.NewPathAttributeNextHop(nextHop)
	if err != nil {
		return fmt.Errorf("bgptest: next hop %v: %w", nextHop, err)
	}
	fam := bgp.RF_IPv4_UC
	if prefix.Addr().Is6() {
		fam = bgp.RF_IPv6_UC
	}
	path := &apiutil.Path{
		Family:     fam,
		Nlri:       nlri,
		Attrs:      []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP), nh},
		Withdrawal: withdraw,
	}
	if withdraw {
		return r.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{path}})
	}
	_, err = r.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path}})
	return err
}

// toRoute converts a GoBGP path of the unicast families.
func toRoute(p *apiutil.Path) (Route, bool) {
	nlri, ok := p.Nlri.(*bgp.IPAddrPrefix)
	if !ok {
		return Route{}, false
	}
	rt := Route{Prefix: nlri.Prefix, From: p.PeerAddress, Stale: p.Stale}
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			rt.NextHop = a.Value
		case *bgp.PathAttributeMpReachNLRI:
			rt.NextHop = a.Nexthop
		case *bgp.PathAttributeAsPath:
			for _, seg := range a.Value {
				rt.ASPath = append(rt.ASPath, seg.GetAS()...)
			}
		case *bgp.PathAttributeCommunities:
			rt.Communities = slices.Clone(a.Value)
		case *bgp.PathAttributeLargeCommunities:
			for _, c := range a.Values {
				rt.LargeCommunities = append(rt.LargeCommunities, LargeCommunity{c.ASN, c.LocalData1, c.LocalData2})
			}
		case *bgp.PathAttributeLocalPref:
			v := a.Value
			rt.LocalPref = &v
		}
	}
	return rt, true
}

func sortRoutes(rs []Route) {
	slices.SortFunc(rs, func(a, b Route) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()), a.From.Compare(b.From))
	})
}
