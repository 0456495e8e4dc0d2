package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// peerEvent is the last state change GoBGP reported for a neighbor.
type peerEvent struct {
	state   SessionState
	since   time.Time
	lastErr string
	gen     uint64 // counts state changes; a later one supersedes a pending BFD switch
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
	byAddr, err := s.gobgpPeers(ctx)
	if err != nil {
		return nil, err
	}
	s.evMu.Lock()
	defer s.evMu.Unlock()
	out := make([]PeerStatus, 0, len(s.st.peers))
	for _, e := range s.st.peers {
		out = append(out, s.peerStatus(e, byAddr[e.cfg.Address]))
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// gobgpPeers returns GoBGP's view of its neighbors by address.
func (s *Speaker) gobgpPeers(ctx context.Context) (map[netip.Addr]*api.Peer, error) {
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
	return byAddr, nil
}

// peerStatus combines an applied peer, GoBGP's view of it (nil if GoBGP
// has none) and its last event. The caller holds evMu.
func (s *Speaker) peerStatus(e *peerEntry, ap *api.Peer) PeerStatus {
	ps := PeerStatus{Name: e.cfg.Name, Address: e.cfg.Address, State: StateIdle}
	if e.cfg.BFD.Enabled {
		ps.BFDState = BFDDown
	}
	if ap != nil && e.configured {
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
	return ps
}

// onPeerEvent records a session state change reported by GoBGP and starts
// or stops BFD with the session (see bfdStartDelay).
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
