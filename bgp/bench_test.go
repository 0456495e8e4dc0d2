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
