package l2mode

import (
	"context"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// apiProbe tells whether this speaker still reaches the API server: a
// live GET of its own Node every interval (only while L2 mode is in use),
// stale after staleAfter without a success. A speaker with a stale view
// yields an address another node claims too (l2election.Yields), which
// bounds how long two nodes answer when one is cut off from the API
// server: staleAfter plus a heartbeat.
type apiProbe struct {
	reader     client.Reader
	node       string
	interval   time.Duration
	staleAfter time.Duration
	active     func() bool
	onChange   func()

	lastOK atomic.Int64 // unix nanoseconds
	stale  atomic.Bool
}

// Stale reports whether the API server has not answered for staleAfter.
func (p *apiProbe) Stale() bool { return p.stale.Load() }

// Start implements manager.Runnable.
func (p *apiProbe) Start(ctx context.Context) error {
	p.lastOK.Store(time.Now().UnixNano())
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !p.active() {
			p.lastOK.Store(time.Now().UnixNano())
		} else {
			c, cancel := context.WithTimeout(ctx, p.interval)
			if err := p.reader.Get(c, types.NamespacedName{Name: p.node}, &corev1.Node{}); err == nil {
				p.lastOK.Store(time.Now().UnixNano())
			}
			cancel()
		}
		stale := time.Since(time.Unix(0, p.lastOK.Load())) > p.staleAfter
		if p.stale.Swap(stale) != stale {
			p.onChange()
		}
	}
}
