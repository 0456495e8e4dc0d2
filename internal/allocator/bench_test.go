package allocator

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// The IPv4 benchmarks use 10.0.0.0/8 although tests otherwise stick to
// documentation ranges: the requirement is flat cost in a /8, no reserved
// range is that large (198.18.0.0/15 holds only 131,072 addresses, fewer
// than the 1M allocations measured), and the allocator is pure arithmetic,
// so no address is configured or sent anywhere.
var benchPools = []struct {
	name  string
	fam   Family
	avoid bool
	cidr  string
}{
	{"v4-slash8", IPv4, false, "10.0.0.0/8"},
	{"v4-slash8-avoidbuggy", IPv4, true, "10.0.0.0/8"},
	{"v6-slash64", IPv6, false, "2001:db8::/64"},
}

var benchSizes = []int{1_000, 100_000, 1_000_000}

func sizeName(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkFill fills an empty pool with n allocations per iteration and
// reports the cost per allocation; flat cost means the figures at 1k, 100k
// and 1M agree. heap-B/held is what the allocator retains per held address.
func BenchmarkFill(b *testing.B) {
	for _, bp := range benchPools {
		for _, n := range benchSizes {
			b.Run(bp.name+"/n="+sizeName(n), func(b *testing.B) {
				p := Pool{Name: "bench", Ranges: []Range{mustRange(b, bp.cidr)}, AvoidBuggyIPs: bp.avoid}
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				iters := 0
				for b.Loop() {
					a := New()
					a.SetPool(p)
					for range n {
						if _, err := a.Allocate("bench", bp.fam); err != nil {
							b.Fatal(err)
						}
					}
					iters++
				}
				elapsed := b.Elapsed()
				runtime.ReadMemStats(&after)
				total := float64(iters * n)
				b.ReportMetric(float64(elapsed.Nanoseconds())/total, "ns/alloc")
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "mallocs/alloc")
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, "B/alloc")

				h0 := heapInUse()
				a := New()
				a.SetPool(p)
				for range n {
					if _, err := a.Allocate("bench", bp.fam); err != nil {
						b.Fatal(err)
					}
				}
				h1 := heapInUse()
				runtime.KeepAlive(a)
				b.ReportMetric(float64(int64(h1)-int64(h0))/float64(n), "heap-B/held")
			})
		}
	}
}

// BenchmarkChurn holds n addresses, fragmented by releasing a random half
// of 2n sequential allocations, then measures one op = release a random
// held address + allocate one, at that fill level; alloc-ns is the
// Allocate half. A random release touches cold memory in two trees, so at
// 1M runs it is bound by cache misses (compare BenchmarkBaselineMapChurn). runs-at-start/-end count
// the held runs (fragments) the trees keep; lowest-free allocation slowly
// defragments the pool, so a long run ends with fewer.
func BenchmarkChurn(b *testing.B) {
	for _, bp := range benchPools {
		for _, n := range benchSizes {
			b.Run(bp.name+"/held="+sizeName(n), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				held := make([]netip.Addr, 0, 2*n)
				h0 := heapInUse()
				a := New()
				a.SetPool(Pool{Name: "bench", Ranges: []Range{mustRange(b, bp.cidr)}, AvoidBuggyIPs: bp.avoid})
				for range 2 * n {
					addr, err := a.Allocate("bench", bp.fam)
					if err != nil {
						b.Fatal(err)
					}
					held = append(held, addr)
				}
				rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
				for _, addr := range held[n:] {
					a.Release(addr)
				}
				held = held[:n]
				h1 := heapInUse()
				fragments := a.held[famOf(held[0])].runs

				b.ReportAllocs()
				var allocTime time.Duration
				iters := 0
				for b.Loop() {
					i := rng.IntN(len(held))
					a.Release(held[i])
					t0 := time.Now()
					addr, err := a.Allocate("bench", bp.fam)
					allocTime += time.Since(t0)
					if err != nil {
						b.Fatal(err)
					}
					held[i] = addr
					iters++
				}
				// The Allocate half alone (includes ~2 clock reads).
				b.ReportMetric(float64(allocTime.Nanoseconds())/float64(iters), "alloc-ns")
				b.ReportMetric(float64(int64(h1)-int64(h0))/float64(n), "heap-B/held")
				b.ReportMetric(float64(fragments), "runs-at-start")
				b.ReportMetric(float64(a.held[famOf(held[0])].runs), "runs-at-end")
			})
		}
	}
}

// BenchmarkReserveRebuild measures rebuilding state at controller start:
// ReserveAny of n addresses in random order, then SetPool.
func BenchmarkReserveRebuild(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run("v6-slash64/n="+sizeName(n), func(b *testing.B) {
			r := mustRange(b, "2001:db8::/64")
			addrs := make([]netip.Addr, n)
			for i := range addrs {
				addrs[i] = addrOf(v6, keyOf(r.First).add(u64(uint64(i)*3)))
			}
			rand.New(rand.NewPCG(3, 4)).Shuffle(n, func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
			iters := 0
			for b.Loop() {
				a := New()
				for _, x := range addrs {
					if err := a.ReserveAny("bench", x); err != nil {
						b.Fatal(err)
					}
				}
				a.SetPool(Pool{Name: "bench", Ranges: []Range{r}})
				iters++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(iters*n), "ns/addr")
		})
	}
}

// BenchmarkBaselineMapChurn calibrates BenchmarkChurn against the memory
// system: a plain hash set of the same n scattered addresses, op = delete a
// random one and insert it again. Its growth from 1k to 1M is cache misses
// alone, not algorithmic cost.
func BenchmarkBaselineMapChurn(b *testing.B) {
	for _, n := range benchSizes {
		b.Run("held="+sizeName(n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			base := keyOf(netip.MustParseAddr("2001:db8::"))
			held := make([]netip.Addr, 2*n)
			for i := range held {
				held[i] = addrOf(v6, base.add(u64(uint64(i))))
			}
			rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
			held = held[:n]
			set := make(map[netip.Addr]struct{}, n)
			for _, x := range held {
				set[x] = struct{}{}
			}
			for b.Loop() {
				x := held[rng.IntN(len(held))]
				delete(set, x)
				set[x] = struct{}{}
			}
		})
	}
}
