package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/go-logr/logr"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/config/oc"
	"github.com/osrg/gobgp/v4/pkg/server"
)

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
	g, cancelWatch, err := s.startInstance(ctx, asn, routerID)
	if err != nil {
		return err
	}
	s.g, s.asn, s.routerID, s.cancelWatch = g, asn, routerID, cancelWatch
	s.log.Info("BGP started", "asn", asn, "routerID", routerID, "listenPort", s.opts.ListenPort)
	return nil
}

// startInstance starts a GoBGP server with the speaker's fixed policies and
// a watch of its peers' state. On error nothing is left running.
func (s *Speaker) startInstance(ctx context.Context, asn uint32, routerID netip.Addr) (*gobgp, context.CancelFunc, error) {
	handler := &stopFilter{Handler: logr.ToSlogHandler(s.log.WithName("gobgp")), stopping: &s.stopping}
	g := &gobgp{srv: server.NewBgpServer(server.LoggerOption(slog.New(handler), nil))}
	go g.srv.Serve()

	fail := func(err error) (*gobgp, context.CancelFunc, error) {
		g.srv.Stop()
		return nil, nil, err
	}
	if err := g.startBgp(ctx, s.globalConfig(asn, routerID)); err != nil {
		return fail(fmt.Errorf("starting GoBGP: %w", err))
	}
	if err := installPolicies(ctx, g); err != nil {
		return fail(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	if err := g.watchPeers(wctx, s.onPeerEvent); err != nil {
		cancel()
		return fail(fmt.Errorf("watching peers: %w", err))
	}
	return g, cancel, nil
}

// globalConfig is GoBGP's global configuration: both unicast families, and
// no listening socket unless Options.ListenPort asks for one.
func (s *Speaker) globalConfig(asn uint32, routerID netip.Addr) *api.Global {
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
	return global
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
