package l2mode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/scopedcache"
	"github.com/bgplb/bgplb/controllers/internal/trim"
	"github.com/bgplb/bgplb/internal/heartbeat"
	"github.com/bgplb/bgplb/l2"
)

// Options configure the L2 mode of a speaker.
type Options struct {
	// NodeName is the node this speaker runs on.
	NodeName string
	// HeartbeatPort is the UDP port speakers exchange heartbeats on
	// (--l2-heartbeat-port); 0 turns L2 mode off.
	HeartbeatPort int
	// HeartbeatInterval and HeartbeatTimeout tune the failure detector
	// (defaults 100ms and 500ms).
	HeartbeatInterval, HeartbeatTimeout time.Duration
	// DefaultClass must match the controller's --default-class.
	DefaultClass bool
	// APIStaleAfter is how long without an answer from the API server
	// makes this speaker's view stale (default 3s).
	APIStaleAfter time.Duration

	// HeartbeatHost is the address heartbeats are received on (default:
	// every address of the node). Tests that run several speakers in one
	// process give each its own loopback address, the Node's InternalIP.
	HeartbeatHost string
	// Links, WatchLinks and Responder replace the node's links, their
	// netlink watch and the ARP/NDP responder (default: package l2's), for
	// tests that run several speakers in one process without raw sockets.
	// With a Responder given, the responder's counters are not registered
	// as metrics (they are the real responder's).
	Links      func() ([]l2.Link, error)
	WatchLinks func(ctx context.Context, changed func(), onError func(error)) error
	Responder  Responder
}

// Setup adds the L2 reconciler, its failure detector and its link watcher
// to the manager. It keeps a cache of its own (every Node, trimmed
// Services and EndpointSlices) beside the BGP reconciler's facts, filled
// only once an L2Advertisement exists (lazyWatches).
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.NodeName == "" {
		return errors.New("l2mode: NodeName is required")
	}
	if opts.HeartbeatPort <= 0 {
		return nil
	}
	c, err := scopedcache.New(mgr, map[client.Object]cache.ByObject{
		&corev1.Node{}: {Transform: trimNode},
		// Only LoadBalancer Services (a Service that stops being one is
		// seen deleted): the cluster's others would cost memory for nothing.
		&corev1.Service{}: {
			Field:     fields.OneTermEqualSelector("spec.type", string(corev1.ServiceTypeLoadBalancer)),
			Transform: trim.Service(ConditionL2Announced), // to write the condition only when it changes
		},
		&discoveryv1.EndpointSlice{}: {Transform: trim.EndpointSlice()},
	})
	if err != nil {
		return fmt.Errorf("the L2 cache: %w", err)
	}
	log := mgr.GetLogger().WithName("l2").WithValues("node", opts.NodeName)
	kick := make(chan event.GenericEvent, 1)
	notify := func() {
		select {
		case kick <- event.GenericEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: opts.NodeName}}}:
		default: // a run is already queued; it will see this change too
		}
	}
	det, err := heartbeat.New(heartbeat.Options{
		Node: opts.NodeName, Listen: net.JoinHostPort(opts.HeartbeatHost, strconv.Itoa(opts.HeartbeatPort)),
		Interval: opts.HeartbeatInterval, Timeout: opts.HeartbeatTimeout,
		OnChange: notify, Logger: log.WithName("heartbeat"),
	})
	if err != nil {
		return err
	}
	resp, closeResp := opts.Responder, func() {}
	if resp == nil {
		l2r := l2.New(l2.Options{Logger: log.WithName("responder")})
		resp, closeResp = l2r, l2r.Close
		if err := registerStats(func() (float64, float64) {
			s := l2r.Stats()
			return float64(s.GratuitousARP), float64(s.UnsolicitedNA)
		}); err != nil {
			return fmt.Errorf("registering L2 metrics: %w", err)
		}
	}
	links, watchLinks := opts.Links, opts.WatchLinks
	if links == nil {
		links = l2.Links
	}
	if watchLinks == nil {
		watchLinks = l2.WatchLinks
	}
	r := &Reconciler{
		NodeName: opts.NodeName, Reader: c, Writer: mgr.GetClient(), Responder: resp, Detector: det,
		Links: links, HeartbeatPort: opts.HeartbeatPort, DefaultClass: opts.DefaultClass,
		Recorder: mgr.GetEventRecorder("bgplb-speaker"), APIReader: mgr.GetAPIReader(),
	}
	probe := &apiProbe{reader: mgr.GetAPIReader(), node: opts.NodeName, interval: time.Second,
		staleAfter: opts.APIStaleAfter, active: r.active.Load, onChange: notify}
	if probe.staleAfter <= 0 {
		probe.staleAfter = 3 * time.Second
	}
	r.APIStale = probe.Stale
	if err := mgr.Add(probe); err != nil {
		return fmt.Errorf("adding the API probe: %w", err)
	}
	key := reconcile.Request{NamespacedName: types.NamespacedName{Name: opts.NodeName}}
	one := func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{key} }
	enqueue := handler.EnqueueRequestsFromMapFunc(one)
	b := ctrl.NewControllerManagedBy(mgr).Named("speaker-l2")
	// The rest is watched once an L2Advertisement exists (lazyWatches).
	b = b.WatchesRawSource(source.Kind[client.Object](c, &v1alpha1.L2Advertisement{}, enqueue))
	b = b.WatchesRawSource(source.Channel(kick, enqueue))
	ctl, err := b.Build(r)
	if err != nil {
		return fmt.Errorf("creating the L2 reconciler: %w", err)
	}
	r.watches = &lazyWatches{cache: c, ctl: ctl, enqueue: enqueue}
	// The detector and the link watcher run on every replica for the
	// manager's lifetime; the responder stops answering when they end.
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		defer closeResp()
		if err := watchLinks(ctx, notify, func(err error) { log.Error(err, "watching links") }); err != nil {
			return err
		}
		// Peers hear this node's links from its first heartbeat, not only
		// after its first run (which waits for its cache): an alive peer
		// with no payload holds back new addresses and the condition writes
		// (peersPending), so
		// that state must not outlast a heartbeat, even for a speaker
		// that cannot reach the API server.
		r.publishLinks()
		det.Run(ctx)
		return nil
	}))
}

// indexSliceService indexes EndpointSlices by their Service's name (in
// their namespace).
const indexSliceService = "l2.bgplb.io/service"

// nodeChanged passes Node updates that matter to L2 ownership: labels,
// addresses and readiness, not the periodic status heartbeats.
func nodeChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*corev1.Node)
		n, ok2 := e.ObjectNew.(*corev1.Node)
		if !ok1 || !ok2 {
			return true
		}
		return o.UID != n.UID || !equality.Semantic.DeepEqual(o.Labels, n.Labels) ||
			!equality.Semantic.DeepEqual(o.Status.Addresses, n.Status.Addresses) || nodeReady(o) != nodeReady(n)
	}}
}

// trimNode keeps labels, addresses and the Ready condition.
func trimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{ObjectMeta: trim.Meta(n.ObjectMeta)}
	out.Labels = n.Labels
	out.Status.Addresses = n.Status.Addresses
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Status.Conditions = []corev1.NodeCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return out, nil
}
