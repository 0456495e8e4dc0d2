package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
)

// The Speaker's methods live in files by concern: instance.go starts and
// stops the GoBGP server, peers.go manages neighbors, bfd.go runs BFD with
// the sessions, policy.go owns the import and export policies, paths.go
// announces and withdraws paths, and status.go reads session state.

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
	peers, skip, errs := s.validPeers(desired.Peers)
	o := newOp()
	configure, perrs := s.applyPeers(ctx, peers, skip, o)
	errs = append(errs, perrs...)
	changes, perrs := s.diffPaths(desired.Paths, skip, o)
	errs = append(errs, perrs...)
	errs = append(errs, s.applyPathChanges(ctx, changes, o)...)
	// Neighbors last: see configurePeers.
	errs = append(errs, s.configurePeers(ctx, configure)...)
	errs = append(errs, s.cleanup(ctx, o)...)
	return errors.Join(errs...)
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
