package bgp

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

// validPeers normalizes the desired peers, keyed by name. Invalid peers,
// duplicate names and reused addresses are reported and put in skip (so
// paths naming them are not reported again), except that a running peer
// whose new configuration is invalid keeps its previous one.
func (s *Speaker) validPeers(desired []Peer) (peers map[string]Peer, skip map[string]bool, errs []error) {
	peers = make(map[string]Peer, len(desired))
	skip = make(map[string]bool)
	addrs := make(map[netip.Addr]string, len(desired))
	for _, p := range desired {
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
	return peers, skip, errs
}

// applyPeers removes the peers no longer desired, registers the new ones
// and declares their profiles. Peers that could not be registered are put
// in skip. It returns the desired peers, whose GoBGP neighbors
// configurePeers sets once the paths are applied.
func (s *Speaker) applyPeers(ctx context.Context, desired map[string]Peer, skip map[string]bool, o *op) ([]peerConfig, []error) {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(s.st.peers)) {
		e := s.st.peers[name]
		if d, ok := desired[name]; ok && d.Address == e.cfg.Address {
			continue
		}
		// Removed, or moved to another address: a new peer id is needed
		// because the neighbor set of its statements names the address.
		errs = append(errs, s.removePeer(ctx, e, o)...)
	}
	var need []tag
	var configure []peerConfig
	for _, name := range slices.Sorted(maps.Keys(desired)) {
		d := desired[name]
		e, err := s.peerEntryFor(ctx, d)
		if err != nil {
			errs = append(errs, err)
			skip[name] = true
			continue
		}
		configure = append(configure, peerConfig{e, d})
		e.cfg.Profiles = d.Profiles
		missing, derrs := s.declareProfiles(e, d.Profiles, o)
		need = append(need, missing...)
		errs = append(errs, derrs...)
	}
	return configure, append(errs, s.installDeclared(ctx, need, o)...)
}

// peerConfig is a desired peer whose GoBGP neighbor configurePeers sets.
type peerConfig struct {
	e *peerEntry
	d Peer
}

// configurePeers adds, replaces or updates the GoBGP neighbors. Apply calls
// it after the paths are in the table: a session that comes up sends the
// whole table, then End-of-RIB. Were the neighbor added first, a session
// could come up in between and send End-of-RIB over an empty table; after
// a graceful restart the router would then flush the node's stale routes
// until the paths arrived, and drop connections.
func (s *Speaker) configurePeers(ctx context.Context, peers []peerConfig) []error {
	var errs []error
	for _, p := range peers {
		if err := s.configurePeer(ctx, p.e, p.d); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// peerEntryFor returns the entry of a desired peer, registering a new one
// (not yet configured in GoBGP) with its neighbor set if needed.
func (s *Speaker) peerEntryFor(ctx context.Context, d Peer) (*peerEntry, error) {
	if e := s.st.peers[d.Name]; e != nil {
		return e, nil
	}
	e := s.st.newPeer(d)
	e.configured = false
	if err := s.g.addDefinedSet(ctx, neighborSet(e)); err != nil {
		s.st.dropPeer(e)
		return nil, fmt.Errorf("peer %q: adding neighbor set: %w", d.Name, err)
	}
	return e, nil
}

// configurePeer adds the neighbor to GoBGP, replaces it when its session
// parameters changed, or changes its BFD in place.
func (s *Speaker) configurePeer(ctx context.Context, e *peerEntry, d Peer) error {
	name := d.Name
	switch {
	case !e.configured:
		// BFD starts once the session is up (syncBFD).
		if err := s.g.addPeer(ctx, s.peerToAPI(d, false)); err != nil {
			return fmt.Errorf("peer %q: adding to GoBGP: %w", name, err)
		}
		e.configured, e.cfg, e.bfdOn = true, d, false
		s.log.Info("BGP peer added", "peer", name, "address", d.Address, "asn", d.ASN)
	case !sessionEqual(e.cfg, d):
		// GoBGP applies most session parameters (timers, password,
		// capabilities) only to a new session: replace the neighbor.
		if err := s.g.deletePeer(ctx, d.Address.String()); err != nil {
			return fmt.Errorf("peer %q: removing for update: %w", name, err)
		}
		e.configured, e.bfdOn = false, false
		if err := s.g.addPeer(ctx, s.peerToAPI(d, false)); err != nil {
			return fmt.Errorf("peer %q: re-adding for update: %w", name, err)
		}
		e.configured, e.cfg = true, d
		s.log.Info("BGP peer updated, session reset", "peer", name)
	case e.cfg.BFD != d.BFD:
		// Running BFD changes in place; BFD that is not running yet
		// starts through syncBFD, a moment after Established.
		if e.bfdOn {
			if err := s.g.updatePeer(ctx, s.peerToAPI(d, d.BFD.Enabled)); err != nil {
				return fmt.Errorf("peer %q: updating BFD: %w", name, err)
			}
			e.bfdOn = d.BFD.Enabled
		} else if d.BFD.Enabled {
			s.startBFDLater(d.Address)
		}
		e.cfg.BFD = d.BFD
		s.log.Info("BGP peer BFD updated", "peer", name, "enabled", d.BFD.Enabled)
	}
	return nil
}

// declareProfiles records the peer's declared profiles: statements that
// stay even without paths. It returns the declared statements not
// installed yet; statements no longer declared become cleanup candidates.
func (s *Speaker) declareProfiles(e *peerEntry, profiles []Attributes, o *op) ([]tag, []error) {
	var errs []error
	declared := make(map[tag]bool, len(profiles))
	for _, a := range profiles {
		id, err := s.st.intern(a, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("peer %q: profile: %w", e.cfg.Name, err))
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
	var need []tag
	for t := range declared {
		if se := s.st.stmts[t]; se != nil {
			se.declared = true
		} else {
			need = append(need, t)
		}
	}
	e.declared = declared
	return need, errs
}

// installDeclared installs the statements of newly declared profiles.
func (s *Speaker) installDeclared(ctx context.Context, need []tag, o *op) []error {
	slices.SortFunc(need, compareTags)
	failed, errs := s.installStatements(ctx, need, o)
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
