package bgp

import (
	"context"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

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
