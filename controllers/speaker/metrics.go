package speaker

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the speaker, registered with controller-runtime's registry so
// they are served with the manager's own on its metrics endpoint.
var (
	sessionUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bgplb_speaker_session_up",
		Help: "1 when the BGP session with the peer is Established, 0 otherwise.",
	}, []string{"peer"})
	announcedPrefixes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bgplb_speaker_announced_prefixes",
		Help: "Prefixes announced to the peer on the Established session.",
	}, []string{"peer"})
	bfdUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bgplb_speaker_bfd_up",
		Help: "1 when the BFD session with the peer is Up, 0 otherwise; no series for a peer without BFD.",
	}, []string{"peer"})
	applies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bgplb_speaker_apply_total",
		Help: "Calls applying BGP state (the whole state, or a run's changed paths), by result (success, error).",
	}, []string{"result"})
	pathsAdded = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bgplb_speaker_paths_added_total",
		Help: "Prefixes that started being announced.",
	})
	pathsChanged = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bgplb_speaker_paths_changed_total",
		Help: "Announced prefixes whose peers or attributes changed.",
	})
	pathsRemoved = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bgplb_speaker_paths_removed_total",
		Help: "Prefixes that stopped being announced.",
	})
	nodeRecomputes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bgplb_speaker_node_recomputes_total",
		Help: "Runs that recomputed the node's whole BGP state (a peer, advertisement, pool, Node, Secret or drain change, a start, a retry); other runs recompute only the Services that changed.",
	})
	reconcileDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "bgplb_speaker_reconcile_duration_seconds",
		Help:    "Time to compute and apply the node's BGP state: whole, or for the Services that changed.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
)

func init() {
	metrics.Registry.MustRegister(sessionUp, announcedPrefixes, bfdUp, applies, pathsAdded, pathsChanged, pathsRemoved, nodeRecomputes, reconcileDuration)
}
