package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/config/oc"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Names of the GoBGP policy objects the speaker owns.
const (
	importPolicy = "bgplb-import"
	exportPolicy = "bgplb-export"
)

// ErrStopped is returned by calls made after Stop.
var ErrStopped = errors.New("bgp speaker stopped")

// Speaker announces paths to BGP peers from an embedded GoBGP server. It
// runs no gRPC server, does not listen unless Options.ListenPort is set,
// rejects every route peers send, and keeps per-peer attributes in export
// statements that change only when the set of attribute profiles changes.
// All methods are safe for concurrent use.
type Speaker struct {
	log      logr.Logger
	opts     Options
	stopping atomic.Bool // silences GoBGP's own redundant StopBgp error on Stop

	mu          sync.Mutex // serializes Apply, UpdatePaths, Status and Stop
	g           *gobgp     // nil until the first Apply
	asn         uint32
	routerID    netip.Addr
	st          state
	stopped     bool
	cancelWatch context.CancelFunc

	evMu   sync.Mutex
	events map[netip.Addr]*peerEvent
}

// peerEvent is the last state change GoBGP reported for a neighbor.
type peerEvent struct {
	state   SessionState
	since   time.Time
	lastErr string
	gen     uint64 // counts state changes; a later one supersedes a pending BFD switch
}

// bfdStartDelay is how long after a session is Established BFD starts on
// it. BFD follows the BGP session, as routers do: FRR creates its BFD
// session when the BGP session comes up (for a dynamic neighbor first one
// with an unknown local address, replaced at once, whose first packet still
// goes out) and deletes it when the BGP session goes down. GoBGP's BFD peer
// keeps the first remote discriminator it hears and then discards the
// router's real session, expires and resets BGP, which makes the router
// start over: sessions flap every few seconds. A fresh GoBGP BFD peer that
// starts a moment after Established, and is removed when the session
// drops, binds to the router's current BFD session.
const bfdStartDelay = time.Second

// New returns a speaker. The embedded GoBGP server starts on the first
// Apply, when the ASN and router ID are known.
func New(opts Options) (*Speaker, error) {
	if opts.ListenPort < 0 || opts.ListenPort > 65535 {
		return nil, fmt.Errorf("invalid listen port %d", opts.ListenPort)
	}
	for _, a := range opts.ListenAddresses {
		if !a.IsValid() {
			return nil, fmt.Errorf("invalid listen address %v", a)
		}
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1024
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	return &Speaker{
		log:    opts.Logger,
		opts:   opts,
		st:     newState(),
		events: make(map[netip.Addr]*peerEvent),
	}, nil
}

// Apply makes the speaker's peers and paths match desired: peers are added,
// updated in place (a change of session parameters resets that session
// only; a BFD change resets none) or removed; paths are added, replaced or
// withdrawn one by one. Only differences reach GoBGP, so adding or removing
// one path costs one GoBGP call whatever the number of paths. Apply is
// idempotent. Invalid items are skipped and reported in the returned error
// (errors.Join) while everything else is applied; a running peer whose new
// configuration is invalid keeps its previous one. Changing ASN or RouterID
// restarts the BGP server and so every session.
func (s *Speaker) Apply(ctx context.Context, desired State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if err := s.ensureInstance(ctx, desired.ASN, desired.RouterID); err != nil {
		return err
	}
	var errs []error
	peers := make(map[string]Peer, len(desired.Peers))
	skip := make(map[string]bool)
	addrs := make(map[netip.Addr]string, len(desired.Peers))
	for _, p := range desired.Peers {
		n, err := normalizePeer(p)
		if prev := s.st.peers[p.Name]; err != nil && prev != nil && prev.configured {
			// A bad edit of a working peer must not take its session down:
			// keep what runs and say why.
			errs = append(errs, fmt.Errorf("%w (keeping the previous configuration)", err))
			n, err = prev.cfg, nil
		}
		switch {
		case err != nil:
			errs = append(errs, err)
			skip[p.Name] = true
		case peers[n.Name].Name != "" || skip[n.Name]:
			errs = append(errs, fmt.Errorf("peer %q: duplicate name", n.Name))
			skip[n.Name] = true
		case addrs[n.Address] != "":
			errs = append(errs, fmt.Errorf("peer %q: address %v already used by peer %q", n.Name, n.Address, addrs[n.Address]))
			skip[n.Name] = true
		default:
			peers[n.Name] = n
			addrs[n.Address] = n.Name
		}
	}
	o := newOp()
	errs = append(errs, s.applyPeers(ctx, peers, skip, o)...)

	// The diff walks the whole table: keep it cheap and allocation-free for
	// paths that did not change. Applied paths are marked with the epoch of
	// this Apply instead of collecting desired prefixes in a set.
	s.st.epoch++
	epoch := s.st.epoch
	var changes []pathChange
	var fresh map[netip.Prefix]bool // desired prefixes not applied yet
	visited := 0
	var buf []tag
	for _, p := range desired.Paths {
		if err := checkPrefix(p.Prefix); err != nil {
			errs = append(errs, err)
			continue
		}
		ap := s.st.paths[p.Prefix]
		switch {
		case ap != nil && ap.epoch == epoch, ap == nil && fresh[p.Prefix]:
			errs = append(errs, fmt.Errorf("path %v: duplicate prefix", p.Prefix))
			continue
		case ap != nil:
			ap.epoch = epoch
			visited++
		default:
			if fresh == nil {
				fresh = make(map[netip.Prefix]bool)
			}
			fresh[p.Prefix] = true
		}
		var terrs []error
		buf, terrs = s.st.resolve(buf[:0], p, skip, o)
		errs = append(errs, terrs...)
		if ap != nil && !ap.dirty && s.st.sameLive(buf, ap.tags) {
			continue
		}
		changes = append(changes, pathChange{prefix: p.Prefix, tags: slices.Clone(buf)})
	}
	if visited < len(s.st.paths) {
		for prefix, ap := range s.st.paths {
			if ap.epoch != epoch {
				changes = append(changes, pathChange{prefix: prefix})
			}
		}
	}
	errs = append(errs, s.applyPathChanges(ctx, changes, o)...)
	errs = append(errs, s.cleanup(ctx, o)...)
	return errors.Join(errs...)
}

// UpdatePaths adds or replaces the given paths and withdraws the given
// prefixes, leaving every other path alone. Unlike Apply, whose diff walks
// the whole desired table, its cost is proportional to the number of paths
// passed, so a reconciler that knows which Service changed can use it. The
// peers named in the paths must have been applied with Apply.
func (s *Speaker) UpdatePaths(ctx context.Context, upsert []Path, withdraw []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if s.g == nil {
		return errors.New("bgp speaker not started: call Apply first")
	}
	var errs []error
	o := newOp()
	changes := make([]pathChange, 0, len(upsert)+len(withdraw))
	seen := make(map[netip.Prefix]bool, len(upsert)+len(withdraw))
	for _, p := range upsert {
		if err := checkPrefix(p.Prefix); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[p.Prefix] {
			errs = append(errs, fmt.Errorf("path %v: duplicate prefix", p.Prefix))
			continue
		}
		seen[p.Prefix] = true
		tags, terrs := s.st.resolve(nil, p, nil, o)
		errs = append(errs, terrs...)
		changes = append(changes, pathChange{prefix: p.Prefix, tags: tags})
	}
	for _, prefix := range withdraw {
		if err := checkPrefix(prefix); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[prefix] {
			errs = append(errs, fmt.Errorf("path %v: both updated and withdrawn", prefix))
			continue
		}
		seen[prefix] = true
		changes = append(changes, pathChange{prefix: prefix})
	}
	errs = append(errs, s.applyPathChanges(ctx, changes, o)...)
	errs = append(errs, s.cleanup(ctx, o)...)
	return errors.Join(errs...)
}

// Status reports the state of every applied peer, sorted by name.
func (s *Speaker) Status(ctx context.Context) ([]PeerStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, ErrStopped
	}
	if s.g == nil {
		return nil, nil
	}
	byAddr := make(map[netip.Addr]*api.Peer, len(s.st.peers))
	err := s.g.listPeer(ctx, func(p *api.Peer) {
		if p.Conf == nil || p.State == nil {
			return
		}
		if a, err := netip.ParseAddr(p.Conf.NeighborAddress); err == nil {
			byAddr[a] = p
		}
	})
	if err != nil {
		return nil, fmt.Errorf("listing GoBGP peers: %w", err)
	}
	s.evMu.Lock()
	defer s.evMu.Unlock()
	out := make([]PeerStatus, 0, len(s.st.peers))
	for _, e := range s.st.peers {
		ps := PeerStatus{Name: e.cfg.Name, Address: e.cfg.Address, State: StateIdle}
		if e.cfg.BFD.Enabled {
			ps.BFDState = BFDDown
		}
		if ap := byAddr[e.cfg.Address]; ap != nil && e.configured {
			ps.State = sessionStateFromAPI(ap.State.SessionState)
			if e.cfg.BFD.Enabled && ap.State.BfdState != nil {
				ps.BFDState = bfdStateFromAPI(ap.State.BfdState.SessionState)
			}
			if ps.State == StateEstablished {
				ps.PrefixesSent = e.paths
				if ap.Timers != nil && ap.Timers.State != nil && ap.Timers.State.Uptime != nil {
					ps.Since = ap.Timers.State.Uptime.AsTime()
				}
			}
		}
		if ev := s.events[e.cfg.Address]; ev != nil {
			if ev.state == ps.State {
				ps.Since = ev.since
			}
			ps.LastError = ev.lastErr
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b PeerStatus) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out, nil
}

// Stop shuts the speaker down. With graceful=true it closes the sessions
// that negotiated graceful restart without sending a Cease NOTIFICATION, so
// routers keep our routes for the restart time while a new speaker comes
// up; other sessions get a Cease. With graceful=false every session gets a
// Cease and routers withdraw our routes at once. The speaker cannot be
// reused after Stop.
func (s *Speaker) Stop(ctx context.Context, graceful bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	return s.shutdown(ctx, graceful)
}

// shutdown stops the current GoBGP instance, if any.
func (s *Speaker) shutdown(ctx context.Context, graceful bool) error {
	g := s.g
	if g == nil {
		return nil
	}
	s.g = nil
	done := make(chan error, 1)
	go func() {
		err := g.stopBgp(context.Background(), graceful)
		// Stop() also stops the BFD server; the StopBgp it repeats fails
		// because BGP is already stopped, which is expected.
		s.stopping.Store(true)
		g.srv.Stop()
		s.stopping.Store(false)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if s.cancelWatch != nil {
		s.cancelWatch()
		s.cancelWatch = nil
	}
	if err != nil {
		return fmt.Errorf("stopping GoBGP: %w", err)
	}
	return nil
}

// ensureInstance starts GoBGP for asn and routerID, restarting it if they
// changed.
func (s *Speaker) ensureInstance(ctx context.Context, asn uint32, routerID netip.Addr) error {
	if asn == 0 {
		return errors.New("ASN must not be 0")
	}
	if !routerID.Unmap().Is4() {
		return fmt.Errorf("router ID %v must be an IPv4 address", routerID)
	}
	routerID = routerID.Unmap()
	if s.g != nil && s.asn == asn && s.routerID == routerID {
		return nil
	}
	if s.g != nil {
		s.log.Info("ASN or router ID changed, restarting BGP", "asn", asn, "routerID", routerID)
		if err := s.shutdown(ctx, false); err != nil {
			return err
		}
		s.st = newState()
		s.evMu.Lock()
		s.events = make(map[netip.Addr]*peerEvent)
		s.evMu.Unlock()
	}

	handler := &stopFilter{Handler: logr.ToSlogHandler(s.log.WithName("gobgp")), stopping: &s.stopping}
	g := &gobgp{srv: server.NewBgpServer(server.LoggerOption(slog.New(handler), nil))}
	go g.srv.Serve()

	global := &api.Global{
		Asn:      asn,
		RouterId: routerID.String(),
		// GoBGP listens on 179 when the port is 0; -1 disables listening.
		ListenPort: -1,
		Families: []uint32{
			uint32(oc.AfiSafiTypeToIntMap[oc.AFI_SAFI_TYPE_IPV4_UNICAST]),
			uint32(oc.AfiSafiTypeToIntMap[oc.AFI_SAFI_TYPE_IPV6_UNICAST]),
		},
	}
	if s.opts.ListenPort > 0 {
		global.ListenPort = s.opts.ListenPort
		for _, a := range s.opts.ListenAddresses {
			global.ListenAddresses = append(global.ListenAddresses, a.String())
		}
	}
	fail := func(err error) error {
		g.srv.Stop()
		return err
	}
	if err := g.startBgp(ctx, global); err != nil {
		return fail(fmt.Errorf("starting GoBGP: %w", err))
	}
	// Import: accept our own paths (GoBGP runs local paths through the import
	// policy too), reject everything peers send.
	if err := g.addPolicy(ctx, &api.Policy{Name: importPolicy, Statements: []*api.Statement{{
		Name:       importPolicy + "-local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}}); err != nil {
		return fail(fmt.Errorf("adding import policy: %w", err))
	}
	if err := g.addPolicyAssignment(ctx, &api.PolicyAssignment{
		Direction:     api.PolicyDirection_POLICY_DIRECTION_IMPORT,
		Policies:      []*api.Policy{{Name: importPolicy}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}); err != nil {
		return fail(fmt.Errorf("assigning import policy: %w", err))
	}
	// Export: one statement per (peer, profile) in use; nothing else leaves.
	if err := g.addPolicy(ctx, &api.Policy{Name: exportPolicy}); err != nil {
		return fail(fmt.Errorf("adding export policy: %w", err))
	}
	if err := g.addPolicyAssignment(ctx, &api.PolicyAssignment{
		Direction:     api.PolicyDirection_POLICY_DIRECTION_EXPORT,
		Policies:      []*api.Policy{{Name: exportPolicy}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}); err != nil {
		return fail(fmt.Errorf("assigning export policy: %w", err))
	}
	wctx, cancel := context.WithCancel(context.Background())
	if err := g.watchPeers(wctx, s.onPeerEvent); err != nil {
		cancel()
		return fail(fmt.Errorf("watching peers: %w", err))
	}
	s.g, s.asn, s.routerID, s.cancelWatch = g, asn, routerID, cancel
	s.log.Info("BGP started", "asn", asn, "routerID", routerID, "listenPort", s.opts.ListenPort)
	return nil
}

func (s *Speaker) onPeerEvent(ev *apiutil.WatchEventMessage_PeerEvent, ts time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	st := ev.Peer.State
	state := sessionStateFromFSM(st.SessionState)
	s.evMu.Lock()
	defer s.evMu.Unlock()
	e := s.events[st.NeighborAddress]
	if e == nil {
		e = &peerEvent{}
		s.events[st.NeighborAddress] = e
	}
	if e.state != state {
		old := e.state
		e.state, e.since = state, ts
		e.gen++
		addr, gen := st.NeighborAddress, e.gen
		switch {
		case state == StateEstablished:
			time.AfterFunc(bfdStartDelay, func() { s.syncBFD(addr, gen, time.Time{}) })
		case old == StateEstablished:
			// Not from GoBGP's watch callback: syncBFD calls into GoBGP.
			go s.syncBFD(addr, gen, time.Now().Add(bfdStopWait))
		}
	}
	// Sessions always go down through Idle; other transitions carry
	// progress reasons ("new-connection", ...), not errors.
	if st.DisconnectMessage != "" && state == StateIdle {
		e.lastErr = st.DisconnectMessage
	}
}

// bfdStopWait bounds how long syncBFD waits for a dropped session's BFD
// to be Down before removing it, retrying every bfdStopRetry. GoBGP
// v4.8.0 deadlocks when a BFD peer is removed while it is expiring: the
// expiring BFD peer resets the BGP peer through the BGP server's loop,
// while that loop waits for the BFD server, which waits for the BFD peer
// to stop. A session usually drops together with its BFD (a frozen or dead
// node, a router that closed it), so the removal waits until GoBGP reports
// BFD Down, after which it cannot expire again. A BFD session still Up
// after bfdStopWait is kept alive by the router, so it is not expiring.
const (
	bfdStopWait  = 5 * time.Second
	bfdStopRetry = 100 * time.Millisecond
)

// syncBFD starts or stops GoBGP's BFD for the peer at addr so that it runs
// exactly while the session is Established (see bfdStartDelay). gen is the
// peer event that asked for it; a later event takes over. When stopping,
// it first waits (until stopBy at most) for the BFD session to be Down
// (see bfdStopWait).
func (s *Speaker) syncBFD(addr netip.Addr, gen uint64, stopBy time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.g == nil {
		return
	}
	s.evMu.Lock()
	ev := s.events[addr]
	current := ev != nil && ev.gen == gen
	established := ev != nil && ev.state == StateEstablished
	s.evMu.Unlock()
	e := s.st.peerAt(addr)
	if !current || e == nil || !e.configured {
		return
	}
	want := established && e.cfg.BFD.Enabled
	if want == e.bfdOn {
		return
	}
	if !want && time.Now().Before(stopBy) && s.bfdMayExpire(addr) {
		time.AfterFunc(bfdStopRetry, func() { s.syncBFD(addr, gen, stopBy) })
		return
	}
	if err := s.g.updatePeer(context.Background(), s.peerToAPI(e.cfg, want)); err != nil {
		s.log.Error(err, "switching BFD", "peer", e.cfg.Name, "on", want)
		return
	}
	e.bfdOn = want
	s.log.V(1).Info("BFD switched with the session", "peer", e.cfg.Name, "on", want)
}

// bfdMayExpire reports whether GoBGP's BFD session with addr is in a state
// from which it can still expire (anything but Down). Unknown counts as no.
func (s *Speaker) bfdMayExpire(addr netip.Addr) bool {
	may := false
	err := s.g.listPeer(context.Background(), func(p *api.Peer) {
		if p.Conf == nil || p.State == nil || p.State.BfdState == nil {
			return
		}
		if a, err := netip.ParseAddr(p.Conf.NeighborAddress); err != nil || a != addr {
			return
		}
		may = p.State.BfdState.SessionState != api.BfdSessionState_BFD_SESSION_STATE_DOWN
	})
	return err == nil && may
}

// startBFDLater starts BFD for an Established session bfdStartDelay from
// now, unless the session changes state meanwhile (its own event then
// decides). The delay keeps a session that just came up clear of the
// router's short-lived first BFD session.
func (s *Speaker) startBFDLater(addr netip.Addr) {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	if ev := s.events[addr]; ev != nil && ev.state == StateEstablished {
		gen := ev.gen
		time.AfterFunc(bfdStartDelay, func() { s.syncBFD(addr, gen, time.Time{}) })
	}
}

// applyPeers brings GoBGP's neighbors and their declared profiles in line
// with desired. Peers that could not be added are put in skip.
func (s *Speaker) applyPeers(ctx context.Context, desired map[string]Peer, skip map[string]bool, o *op) []error {
	var errs []error
	for _, name := range sortedKeys(s.st.peers) {
		e := s.st.peers[name]
		if d, ok := desired[name]; ok && d.Address == e.cfg.Address {
			continue
		}
		// Removed, or moved to another address: a new peer id is needed
		// because the neighbor set of its statements names the address.
		errs = append(errs, s.removePeer(ctx, e, o)...)
	}
	var need []tag
	for _, name := range sortedKeys(desired) {
		d := desired[name]
		e := s.st.peers[name]
		if e == nil {
			e = s.st.newPeer(d)
			e.configured = false
			if err := s.g.addDefinedSet(ctx, neighborSet(e)); err != nil {
				errs = append(errs, fmt.Errorf("peer %q: adding neighbor set: %w", name, err))
				s.st.dropPeer(e)
				skip[name] = true
				continue
			}
		}
		switch {
		case !e.configured:
			// BFD starts once the session is up (syncBFD).
			if err := s.g.addPeer(ctx, s.peerToAPI(d, false)); err != nil {
				errs = append(errs, fmt.Errorf("peer %q: adding to GoBGP: %w", name, err))
			} else {
				e.configured, e.cfg, e.bfdOn = true, d, false
				s.log.Info("BGP peer added", "peer", name, "address", d.Address, "asn", d.ASN)
			}
		case !sessionEqual(e.cfg, d):
			// GoBGP applies most session parameters (timers, password,
			// capabilities) only to a new session: replace the neighbor.
			if err := s.g.deletePeer(ctx, d.Address.String()); err != nil {
				errs = append(errs, fmt.Errorf("peer %q: removing for update: %w", name, err))
				break
			}
			e.configured, e.bfdOn = false, false
			if err := s.g.addPeer(ctx, s.peerToAPI(d, false)); err != nil {
				errs = append(errs, fmt.Errorf("peer %q: re-adding for update: %w", name, err))
				break
			}
			e.configured, e.cfg = true, d
			s.log.Info("BGP peer updated, session reset", "peer", name)
		case e.cfg.BFD != d.BFD:
			// Running BFD changes in place; BFD that is not running yet
			// starts through syncBFD, a moment after Established.
			if e.bfdOn {
				if err := s.g.updatePeer(ctx, s.peerToAPI(d, d.BFD.Enabled)); err != nil {
					errs = append(errs, fmt.Errorf("peer %q: updating BFD: %w", name, err))
					break
				}
				e.bfdOn = d.BFD.Enabled
			} else if d.BFD.Enabled {
				s.startBFDLater(d.Address)
			}
			e.cfg.BFD = d.BFD
			s.log.Info("BGP peer BFD updated", "peer", name, "enabled", d.BFD.Enabled)
		}
		e.cfg.Profiles = d.Profiles

		// Declared profiles: statements that stay even without paths.
		declared := make(map[tag]bool, len(d.Profiles))
		for _, a := range d.Profiles {
			id, err := s.st.intern(a, o)
			if err != nil {
				errs = append(errs, fmt.Errorf("peer %q: profile: %w", name, err))
				continue
			}
			declared[tag{peer: e.id, profile: id}] = true
		}
		for t := range e.declared {
			if !declared[t] {
				if se := s.st.stmts[t]; se != nil {
					se.declared = false
					o.candidates[t] = true
				}
			}
		}
		for t := range declared {
			if se := s.st.stmts[t]; se != nil {
				se.declared = true
			} else {
				need = append(need, t)
			}
		}
		e.declared = declared
	}
	slices.SortFunc(need, compareTags)
	failed, ierrs := s.installStatements(ctx, need, o)
	errs = append(errs, ierrs...)
	for _, t := range need {
		if !failed[t] {
			s.st.stmts[t].declared = true
		}
	}
	return errs
}

// removePeer deletes a neighbor, its statements and its neighbor set.
// Paths keep their (now stale) tags for it until they change anyway.
func (s *Speaker) removePeer(ctx context.Context, e *peerEntry, o *op) []error {
	var errs []error
	if e.configured {
		// An error means GoBGP does not know the neighbor: nothing to undo.
		if err := s.g.deletePeer(ctx, e.cfg.Address.String()); err != nil {
			s.log.Error(err, "removing BGP peer", "peer", e.cfg.Name)
		}
	}
	errs = append(errs, s.removeStatements(ctx, s.st.statementsOf(e.id), o)...)
	if err := s.g.deleteDefinedSet(ctx, neighborSet(e)); err != nil {
		s.log.Error(err, "removing neighbor set", "peer", e.cfg.Name)
	}
	s.st.dropPeer(e)
	s.evMu.Lock()
	delete(s.events, e.cfg.Address)
	s.evMu.Unlock()
	s.log.Info("BGP peer removed", "peer", e.cfg.Name, "address", e.cfg.Address)
	return errs
}

// pathChange is the desired tags of one prefix; no tags means withdraw.
type pathChange struct {
	prefix netip.Prefix
	tags   []tag
}

// applyPathChanges installs missing statements, then sends GoBGP the paths
// whose tags differ from what it has, in batches.
func (s *Speaker) applyPathChanges(ctx context.Context, changes []pathChange, o *op) []error {
	var errs []error
	var need []tag
	needed := make(map[tag]bool)
	for _, c := range changes {
		for _, t := range c.tags {
			if s.st.stmts[t] == nil && !needed[t] {
				needed[t] = true
				need = append(need, t)
			}
		}
	}
	slices.SortFunc(need, compareTags)
	failed, ierrs := s.installStatements(ctx, need, o)
	errs = append(errs, ierrs...)

	var adds, dels []pathChange
	for _, c := range changes {
		tags := c.tags
		if len(failed) > 0 {
			// Without its statement a tag would not reach the peer and the
			// path would look applied: leave it out so a later call adds it.
			tags = slices.DeleteFunc(slices.Clone(tags), func(t tag) bool { return failed[t] })
		}
		ap := s.st.paths[c.prefix]
		if len(tags) == 0 {
			if ap != nil {
				dels = append(dels, pathChange{prefix: c.prefix})
			}
			continue
		}
		if ap != nil && !ap.dirty && s.st.sameLive(tags, ap.tags) {
			continue
		}
		adds = append(adds, pathChange{prefix: c.prefix, tags: tags})
	}

	for batch := range slices.Chunk(adds, s.opts.BatchSize) {
		paths := make([]*apiutil.Path, len(batch))
		for i, c := range batch {
			paths[i] = buildPath(c.prefix, c.tags, false)
		}
		if err := s.g.addPaths(paths); err != nil {
			errs = append(errs, fmt.Errorf("adding %d paths: %w", len(batch), err))
			for _, c := range batch {
				s.st.setUnknown(c.prefix, c.tags)
			}
			continue
		}
		for _, c := range batch {
			s.st.setApplied(c.prefix, c.tags, o)
		}
	}
	for batch := range slices.Chunk(dels, s.opts.BatchSize) {
		paths := make([]*apiutil.Path, len(batch))
		for i, c := range batch {
			paths[i] = buildPath(c.prefix, nil, true)
		}
		if err := s.g.deletePaths(paths); err != nil {
			errs = append(errs, fmt.Errorf("withdrawing %d paths: %w", len(batch), err))
			for _, c := range batch {
				s.st.setUnknown(c.prefix, nil)
			}
			continue
		}
		for _, c := range batch {
			s.st.setWithdrawn(c.prefix, o)
		}
	}
	if len(adds)+len(dels) > 0 {
		s.log.V(1).Info("paths applied", "announced", len(adds), "withdrawn", len(dels), "total", len(s.st.paths))
	}
	return errs
}

// cleanup removes statements that lost their last path and declaration,
// then forgets unused profiles.
func (s *Speaker) cleanup(ctx context.Context, o *op) []error {
	errs := s.removeStatements(ctx, s.st.unused(o), o)
	s.st.gcProfiles(o)
	return errs
}

// installStatements adds export statements (one large-community set each,
// then one AddPolicy call for all). It returns the tags that failed.
func (s *Speaker) installStatements(ctx context.Context, tags []tag, o *op) (map[tag]bool, []error) {
	if len(tags) == 0 {
		return nil, nil
	}
	var errs []error
	failed := make(map[tag]bool)
	var stmts []*api.Statement
	var ok []tag
	for _, t := range tags {
		prof := s.st.profileByID[t.profile]
		if prof == nil || s.st.peerByID[t.peer] == nil {
			failed[t] = true
			errs = append(errs, fmt.Errorf("internal error: statement for unknown peer or profile %v", t))
			continue
		}
		if err := s.g.addDefinedSet(ctx, tagSet(t)); err != nil {
			failed[t] = true
			errs = append(errs, fmt.Errorf("adding tag set %s: %w", tagSetName(t), err))
			continue
		}
		s.st.nextStmt++
		// Statement names are never reused, so a half-failed removal can
		// never block a later addition.
		name := "bgplb-s" + strconv.FormatUint(s.st.nextStmt, 10) + "-" + tagSetName(t)[len("bgplb-t-"):]
		stmts = append(stmts, statementFor(name, t, prof.attrs))
		ok = append(ok, t)
	}
	if len(stmts) == 0 {
		return failed, errs
	}
	if err := s.g.addPolicy(ctx, &api.Policy{Name: exportPolicy, Statements: stmts}); err != nil {
		errs = append(errs, fmt.Errorf("adding %d export statements: %w", len(stmts), err))
		for _, t := range ok {
			failed[t] = true
		}
		return failed, errs
	}
	for i, t := range ok {
		s.st.stmts[t] = &stmtEntry{name: stmts[i].Name}
		s.st.profileByID[t.profile].stmts++
		o.candidates[t] = true // removed at cleanup if nothing ends up using it
	}
	s.log.V(1).Info("export statements added", "count", len(ok))
	return failed, errs
}

// removeStatements takes statements out of the export policy (one call)
// and deletes them with their tag sets.
func (s *Speaker) removeStatements(ctx context.Context, tags []tag, o *op) []error {
	if len(tags) == 0 {
		return nil
	}
	pol := &api.Policy{Name: exportPolicy}
	for _, t := range tags {
		pol.Statements = append(pol.Statements, &api.Statement{Name: s.st.stmts[t].name})
	}
	if err := s.g.removeStatements(ctx, pol); err != nil {
		return []error{fmt.Errorf("removing %d export statements: %w", len(tags), err)}
	}
	for _, t := range tags {
		se := s.st.stmts[t]
		// Left-overs below are unreachable (not in the policy) and their
		// names are never reused: log, do not fail.
		if err := s.g.deleteStatement(ctx, se.name); err != nil {
			s.log.Error(err, "deleting export statement", "statement", se.name)
		}
		if err := s.g.deleteDefinedSet(ctx, tagSet(t)); err != nil {
			s.log.Error(err, "deleting tag set", "set", tagSetName(t))
		}
		delete(s.st.stmts, t)
		if p := s.st.profileByID[t.profile]; p != nil {
			p.stmts--
			o.profiles[t.profile] = true
		}
	}
	s.log.V(1).Info("export statements removed", "count", len(tags))
	return nil
}

// peerToAPI converts a normalized peer to GoBGP's configuration, with BFD
// running if p asks for it and bfd is set.
func (s *Speaker) peerToAPI(p Peer, bfd bool) *api.Peer {
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if p.Address.Is6() {
		fam.Afi = api.Family_AFI_IP6
	}
	af := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}
	retry := uint64(p.ConnectRetryTime / time.Second)
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASN,
			LocalAsn:        p.LocalASN,
			AuthPassword:    p.Password,
			Description:     p.Name,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:      retry,
			HoldTime:          uint64(p.HoldTime / time.Second),
			KeepaliveInterval: uint64(p.KeepaliveTime / time.Second),
			// GoBGP waits this long after a reset (e.g. by BFD) before
			// reconnecting; its 30s default would keep a route away long
			// after the link is back.
			IdleHoldTimeAfterReset: retry,
		}},
		Transport: &api.Transport{RemotePort: uint32(p.Port)},
		AfiSafis:  []*api.AfiSafi{af},
	}
	if p.SourceAddress.IsValid() {
		ap.Transport.LocalAddress = p.SourceAddress.String()
	}
	if p.EBGPMultihopTTL > 0 && !p.isIBGP(s.asn) {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.EBGPMultihopTTL)}
	}
	if p.GracefulRestart.Enabled {
		// Notification (RFC 8538) stays off: a Cease must withdraw routes.
		ap.GracefulRestart = &api.GracefulRestart{
			Enabled:     true,
			RestartTime: uint32(p.GracefulRestart.RestartTime / time.Second),
		}
		af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	}
	if p.BFD.Enabled && bfd {
		ap.Bfd = &api.BfdPeerConfig{
			Enabled:                  true,
			DesiredMinimumTxInterval: uint32(p.BFD.MinTx / time.Microsecond),
			RequiredMinimumReceive:   uint32(p.BFD.MinRx / time.Microsecond),
			DetectionMultiplier:      p.BFD.Multiplier,
		}
	}
	return ap
}

func neighborSetName(id uint32) string { return "bgplb-n-" + strconv.FormatUint(uint64(id), 10) }

func neighborSet(e *peerEntry) *api.DefinedSet {
	return &api.DefinedSet{
		DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR,
		Name:        neighborSetName(e.id),
		List:        []string{netip.PrefixFrom(e.cfg.Address, e.cfg.Address.BitLen()).String()},
	}
}

func tagSetName(t tag) string {
	return "bgplb-t-" + strconv.FormatUint(uint64(t.peer), 10) + "-" + strconv.FormatUint(uint64(t.profile), 10)
}

func tagString(t tag) string {
	return LargeCommunity{GlobalAdmin: tagASN, LocalData1: t.peer, LocalData2: t.profile}.String()
}

func tagSet(t tag) *api.DefinedSet {
	return &api.DefinedSet{
		DefinedType: api.DefinedType_DEFINED_TYPE_LARGE_COMMUNITY,
		Name:        tagSetName(t),
		List:        []string{tagString(t)}, // GoBGP anchors A:B:C as ^A:B:C$
	}
}

// statementFor builds the export statement of one (peer, profile): paths
// tagged for it go to that peer with the profile's attributes and without
// any internal tag.
func statementFor(name string, t tag, a Attributes) *api.Statement {
	actions := &api.Actions{
		RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
		// Replace, not add: the path's only large communities are our tags.
		LargeCommunity: &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE},
	}
	for _, c := range a.LargeCommunities {
		actions.LargeCommunity.Communities = append(actions.LargeCommunity.Communities, c.String())
	}
	if len(a.Communities) > 0 {
		actions.Community = &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE}
		for _, c := range a.Communities {
			actions.Community.Communities = append(actions.Community.Communities, strconv.FormatUint(uint64(c), 10))
		}
	}
	if a.LocalPref != nil {
		actions.LocalPref = &api.LocalPrefAction{Value: *a.LocalPref}
	}
	return &api.Statement{
		Name: name,
		Conditions: &api.Conditions{
			NeighborSet:       &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: neighborSetName(t.peer)},
			LargeCommunitySet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: tagSetName(t)},
		},
		Actions: actions,
	}
}

// buildPath makes the GoBGP path for a prefix. The next hop is unspecified
// (0.0.0.0 or ::), which GoBGP replaces with the local address of each
// session when it exports the path.
func buildPath(prefix netip.Prefix, tags []tag, withdraw bool) *apiutil.Path {
	family, nh := bgp.RF_IPv4_UC, netip.IPv4Unspecified()
	if prefix.Addr().Is6() {
		family, nh = bgp.RF_IPv6_UC, netip.IPv6Unspecified()
	}
	nlri, _ := bgp.NewIPAddrPrefix(prefix)       // error only for invalid prefixes, checked before
	nhAttr, _ := bgp.NewPathAttributeNextHop(nh) // error only for invalid addresses
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP), nhAttr}
	if !withdraw {
		lcs := make([]*bgp.LargeCommunity, len(tags))
		for i, t := range tags {
			lcs[i] = bgp.NewLargeCommunity(tagASN, t.peer, t.profile)
		}
		attrs = append(attrs, bgp.NewPathAttributeLargeCommunities(lcs))
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs, Withdrawal: withdraw}
}

func sessionStateFromAPI(s api.PeerState_SessionState) SessionState {
	switch s {
	case api.PeerState_SESSION_STATE_CONNECT:
		return StateConnect
	case api.PeerState_SESSION_STATE_ACTIVE:
		return StateActive
	case api.PeerState_SESSION_STATE_OPENSENT:
		return StateOpenSent
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return StateOpenConfirm
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return StateEstablished
	}
	return StateIdle
}

func sessionStateFromFSM(s bgp.FSMState) SessionState {
	switch s {
	case bgp.BGP_FSM_CONNECT:
		return StateConnect
	case bgp.BGP_FSM_ACTIVE:
		return StateActive
	case bgp.BGP_FSM_OPENSENT:
		return StateOpenSent
	case bgp.BGP_FSM_OPENCONFIRM:
		return StateOpenConfirm
	case bgp.BGP_FSM_ESTABLISHED:
		return StateEstablished
	}
	return StateIdle
}

func bfdStateFromAPI(s api.BfdSessionState) string {
	switch s {
	case api.BfdSessionState_BFD_SESSION_STATE_UP:
		return BFDUp
	case api.BfdSessionState_BFD_SESSION_STATE_INIT:
		return BFDInit
	case api.BfdSessionState_BFD_SESSION_STATE_ADMIN_DOWN:
		return BFDAdminDown
	}
	return BFDDown
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// stopFilter drops the one error GoBGP logs by design when Stop follows
// StopBgp ("failed to stop BGP server": it is already stopped).
type stopFilter struct {
	slog.Handler
	stopping *atomic.Bool
}

func (f *stopFilter) Handle(ctx context.Context, r slog.Record) error {
	if f.stopping.Load() && r.Message == "failed to stop BGP server" {
		return nil
	}
	return f.Handler.Handle(ctx, r)
}

func (f *stopFilter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &stopFilter{Handler: f.Handler.WithAttrs(attrs), stopping: f.stopping}
}

func (f *stopFilter) WithGroup(name string) slog.Handler {
	return &stopFilter{Handler: f.Handler.WithGroup(name), stopping: f.stopping}
}
