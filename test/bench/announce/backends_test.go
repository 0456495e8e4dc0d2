package announce

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

// benchBackends are the speakers' BGP backends measured, one lab each, in
// this order: $BGPLB_BENCH_BACKENDS (space-separated), default both.
func benchBackends() []string {
	if v := strings.Fields(os.Getenv("BGPLB_BENCH_BACKENDS")); len(v) > 0 {
		return v
	}
	return []string{labcluster.BackendGoBGP, labcluster.BackendFRRK8s}
}

// startLab starts a lab whose speakers use backend, with BFD off (it plays
// no part in announcing, and a BFD problem must not disturb those figures;
// the BFD failover phase turns it on, on both ends), and stops it when b
// ends, so the next backend's lab can start.
func startLab(b *testing.B, backend string) *labcluster.Cluster {
	ctx := context.Background()
	start := time.Now()
	c, err := labcluster.Start(ctx, labcluster.Options{
		Progress: os.Stderr,
		Backend:  backend,
		Router: func(_ string, cfg *lab.RouterConfig) {
			for i := range cfg.PeerGroups {
				cfg.PeerGroups[i].BFD = false
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	uninstall := c.StopOnSignal()
	b.Cleanup(func() {
		uninstall()
		if err := c.Stop(); err != nil {
			b.Errorf("stop lab: %v", err)
		}
	})
	for _, p := range peers {
		if err := setPeer(ctx, c, p, func(s *v1alpha1.BGPPeerSpec) { s.BFD = &v1alpha1.BFD{Enabled: false} }); err != nil {
			b.Fatal(err)
		}
	}
	if err := setup(ctx, c); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "lab ready (%s backend) in %v\n", backend, time.Since(start).Round(time.Millisecond))
	return c
}

// seqResult is what the one-at-a-time phase measured: percentiles (p50,
// p95, p99) of create -> route in r1's kernel and in both routers'.
type seqResult struct {
	n        int
	r1, both [3]time.Duration
	// split, when measured: create -> address in status, status -> route in r1.
	split *[2][3]time.Duration
}

// sideBySide prints the one-at-a-time figures of every backend measured.
func sideBySide(seq map[string]seqResult) string {
	var s strings.Builder
	s.WriteString("\n== create -> route, one Service at a time, per BGP backend (same run, same lab)\n")
	fmt.Fprintf(&s, "  %-8s %9s %12s %12s %14s %14s %22s\n", "backend", "services", "r1 p50", "r1 p99", "both p50", "both p99", "speaker+BGP share p50")
	for _, backend := range benchBackends() {
		r, ok := seq[backend]
		if !ok || r.n == 0 {
			fmt.Fprintf(&s, "  %-8s not measured\n", backend)
			continue
		}
		share := "-"
		if r.split != nil {
			share = round(r.split[1][0]).String()
		}
		fmt.Fprintf(&s, "  %-8s %9d %12v %12v %14v %14v %22s\n", backend, r.n,
			round(r.r1[0]), round(r.r1[2]), round(r.both[0]), round(r.both[2]), share)
	}
	return s.String()
}
