package ipam

import (
	"math/big"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/bgplb/bgplb/internal/allocator"
)

var (
	poolAddresses = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bgplb_ipam_pool_addresses",
		Help: "Addresses of an IPPool by family and state: total (usable), allocated (held by Services), available (free). " +
			"IPv6 totals beyond 2^53 lose precision.",
	}, []string{"pool", "family", "state"})

	allocationFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bgplb_ipam_allocation_failures_total",
		Help: "Times a Service was left without the addresses it asks for, by condition reason.",
	}, []string{"reason"})

	allocationLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "bgplb_ipam_allocation_duration_seconds",
		Help:    "Time from the start of an allocation decision to the Service status showing the new address.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
)

func init() {
	metrics.Registry.MustRegister(poolAddresses, allocationFailures, allocationLatency)
}

func setPoolMetrics(pool string, stats map[allocator.Family]allocator.Stats) {
	for _, f := range []allocator.Family{allocator.IPv4, allocator.IPv6} {
		s, ok := stats[f]
		if !ok {
			poolAddresses.DeletePartialMatch(prometheus.Labels{"pool": pool, "family": string(f)})
			continue
		}
		alloc := new(big.Int).Add(s.Allocated, s.Orphaned)
		poolAddresses.WithLabelValues(pool, string(f), "total").Set(toFloat(s.Total))
		poolAddresses.WithLabelValues(pool, string(f), "allocated").Set(toFloat(alloc))
		poolAddresses.WithLabelValues(pool, string(f), "available").Set(toFloat(s.Available))
	}
}

// forgetPoolMetrics drops a pool's series and reports whether it had any
// (false once forgotten already).
func forgetPoolMetrics(pool string) bool {
	return poolAddresses.DeletePartialMatch(prometheus.Labels{"pool": pool}) > 0
}

func toFloat(b *big.Int) float64 {
	f, _ := new(big.Float).SetInt(b).Float64()
	return f
}
