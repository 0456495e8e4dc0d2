package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// Benchmarks. Run e.g.:
//
//	go test ./bgp/ -run '^$' -bench . -benchtime 1x      (bulk: one iteration each)
//	go test ./bgp/ -run '^$' -bench ServiceChange -benchtime 200x
//
// Custom metrics: gobgp-calls/op counts calls into the embedded GoBGP
// server; heap-MiB is the live heap the applied table adds (speaker
// bookkeeping plus GoBGP's RIB, not the caller's desired State).

// BenchmarkApplyBulk applies n paths to a fresh speaker in one Apply.
func BenchmarkApplyBulk(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("paths=%d", n), func(b *testing.B) {
			st := benchState(n)
			var heap float64
			for b.Loop() {
				b.StopTimer()
				s := newSpeaker(b, Options{})
				// Start GoBGP and the peers outside the measurement.
				mustApply(b, s, State{ASN: st.ASN, RouterID: st.RouterID, Peers: st.Peers})
				base := heapMiB()
				b.StartTimer()
				mustApply(b, s, st)
				b.StopTimer()
				heap = heapMiB() - base
				_ = s.Stop(context.Background(), false)
				b.StartTimer()
			}
			b.ReportMetric(float64(n)/(b.Elapsed().Seconds()/float64(b.N)), "paths/s")
			b.ReportMetric(heap, "heap-MiB")
		})
	}
}

// BenchmarkServiceChange measures one Service change (alternately adding
// and removing one path) on top of a table of n paths, through Apply (full
// desired state: GoBGP work is O(1) but the diff walks the table) and
// through UpdatePaths (delta: O(1) overall).
func BenchmarkServiceChange(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10_000, 100_000} {
		st := benchState(n)
		plus := st
		plus.Paths = append(append([]Path(nil), st.Paths...), extraPath())
		s := newSpeaker(b, Options{})
		mustApply(b, s, st)

		b.Run(fmt.Sprintf("table=%d/UpdatePaths", n), func(b *testing.B) {
			before := total(s.g.callCounts())
			i := 0
			for b.Loop() {
				var err error
				if i%2 == 0 {
					err = s.UpdatePaths(ctx, []Path{extraPath()}, nil)
				} else {
					err = s.UpdatePaths(ctx, nil, []netip.Prefix{extraPath().Prefix})
				}
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(total(s.g.callCounts())-before)/float64(b.N), "gobgp-calls/op")
			if i%2 == 1 { // leave the table as it was
				_ = s.UpdatePaths(ctx, nil, []netip.Prefix{extraPath().Prefix})
			}
		})
		b.Run(fmt.Sprintf("table=%d/Apply", n), func(b *testing.B) {
			before := total(s.g.callCounts())
			i := 0
			for b.Loop() {
				next := st
				if i%2 == 0 {
					next = plus
				}
				if err := s.Apply(ctx, next); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(total(s.g.callCounts())-before)/float64(b.N), "gobgp-calls/op")
			if i%2 == 1 {
				_ = s.Apply(ctx, st)
			}
		})
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func heapMiB() float64 {
	runtime.GC()
	time.Sleep(10 * time.Millisecond) // let GoBGP's goroutines settle
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// BenchmarkRouteLatency measures, against a live in-process GoBGP router,
// the time from UpdatePaths (one new Service address) until the router has
// received the route, and from Apply of n paths until the router holds
// all of them.
func BenchmarkRouteLatency(b *testing.B) {
	r := startRouter(b, "127.0.0.30", 65200, "198.51.100.30")
	r.addNeighbor(speakerV4, 64512, neighborOpts{})
	received := func() uint64 {
		var n uint64
		if p := r.neighbor(speakerV4); p != nil {
			for _, af := range p.AfiSafis {
				if af.State != nil {
					n += af.State.Received
				}
			}
		}
		return n
	}
	waitFor := func(want uint64) {
		deadline := time.Now().Add(2 * time.Minute)
		for received() != want {
			if time.Now().After(deadline) {
				b.Fatalf("router has %d routes, want %d", received(), want)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	peer := r.peerFor("tor")
	base := State{ASN: 64512, RouterID: netip.MustParseAddr("192.0.2.1"), Peers: []Peer{peer}}

	b.Run("one-service", func(b *testing.B) {
		s := newSpeaker(b, Options{})
		mustApply(b, s, base)
		waitEstablished(b, s, "tor")
		ctx := context.Background()
		p := Path{Prefix: netip.MustParsePrefix("203.0.113.1/32"), Peers: to("tor")}
		for b.Loop() {
			if err := s.UpdatePaths(ctx, []Path{p}, nil); err != nil {
				b.Fatal(err)
			}
			waitFor(1)
			b.StopTimer()
			if err := s.UpdatePaths(ctx, nil, []netip.Prefix{p.Prefix}); err != nil {
				b.Fatal(err)
			}
			waitFor(0)
			b.StartTimer()
		}
		_ = s.Stop(ctx, false)
	})
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("burst=%d", n), func(b *testing.B) {
			st := base
			for i := range n {
				a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
				st.Paths = append(st.Paths, Path{Prefix: netip.PrefixFrom(a, 32), Peers: to("tor")})
			}
			for b.Loop() {
				b.StopTimer()
				s := newSpeaker(b, Options{})
				mustApply(b, s, base)
				waitEstablished(b, s, "tor")
				b.StartTimer()
				mustApply(b, s, st)
				waitFor(uint64(n))
				b.StopTimer()
				_ = s.Stop(context.Background(), false)
				waitFor(0)
				b.StartTimer()
			}
			b.ReportMetric(float64(n)/(b.Elapsed().Seconds()/float64(b.N)), "routes/s")
		})
	}
}
