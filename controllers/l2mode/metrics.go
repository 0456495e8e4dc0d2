package l2mode

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the L2 mode, served on the speaker's metrics endpoint.
var (
	ownedAddresses = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "bgplb_l2_owned_addresses",
		Help: "Addresses this node answers ARP/NDP for (it is their L2 owner).",
	})
	ownershipChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bgplb_l2_ownership_changes_total",
		Help: "Addresses this node took over (gained) or let go (lost).",
	}, []string{"change"})
	peersAlive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "bgplb_l2_peers_alive",
		Help: "Other L2 speakers this node hears heartbeats from.",
	})
	statusWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bgplb_l2_status_writes_total",
		Help: "Writes of a Service's bgplb.io/L2Announced condition by this node, by result.",
	}, []string{"result"})
)

// registerStats adds the responder's counters (gratuitous ARP and
// unsolicited NA sent) as counter funcs.
func registerStats(stats func() (garp, una float64)) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bgplb_l2_gratuitous_arp_total",
			Help: "Gratuitous ARP packets sent on taking an IPv4 address over.",
		}, func() float64 { g, _ := stats(); return g }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bgplb_l2_unsolicited_na_total",
			Help: "Unsolicited IPv6 neighbor advertisements sent on taking an IPv6 address over.",
		}, func() float64 { _, u := stats(); return u }),
	} {
		if err := metrics.Registry.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func init() {
	metrics.Registry.MustRegister(ownedAddresses, ownershipChanges, peersAlive, statusWrites)
}
