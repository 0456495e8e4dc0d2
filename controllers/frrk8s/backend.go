// Package frrk8s is the speaker's second BGP backend: instead of running
// an embedded GoBGP server it hands the node's desired BGP state, the same
// bgp.State the GoBGP backend applies, to frr-k8s as one FRRConfiguration
// per node (and one password Secret per peer with a password), and reads
// the sessions back from frr-k8s's BGPSessionState objects. The speaker's
// node reconciler does not know which backend runs: Backend implements
// the same three calls as bgp.Speaker (speaker.BGP).
//
// Apply and UpdatePaths only record the state and wake the writer; the
// writer renders it (internal/frrk8s) and writes the FRRConfiguration with
// server-side apply, at most once per debounce interval, so a burst of
// Service changes costs one write per interval (docs/frr-k8s.md).
package frrk8s

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
	"github.com/bgplb/bgplb/controllers/internal/scopedcache"
	"github.com/bgplb/bgplb/controllers/speaker"
	"github.com/bgplb/bgplb/internal/frrk8s"
)

// Labels on every object the backend writes.
const (
	// ManagedByLabel (app.kubernetes.io/managed-by) is ManagedBy on them.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "bgplb"
	// NodeLabel names the node an object belongs to (NodeLabelValue).
	NodeLabel = "bgplb.io/node"
	// FieldManager is the server-side apply field manager of the speaker.
	FieldManager = "bgplb-speaker"
)

// Options configure a Backend.
type Options struct {
	NodeName string
	// Namespace is frr-k8s's namespace (it reads FRRConfigurations and
	// Secrets only there). Default frr-k8s-system.
	Namespace string
	// Debounce is the least time between two writes of the node's
	// FRRConfiguration. Default 200ms.
	Debounce time.Duration
	// Resync is how often the writer checks the stored objects against
	// what it wrote (someone edited or deleted them). Default 30s.
	Resync time.Duration
}

// unknownState is BGPNodeStatus's "Unknown": frr-k8s has not reported the
// session.
const unknownState = bgp.SessionState(v1alpha1.SessionUnknown)

// DefaultNamespace is where frr-k8s runs by default.
const DefaultNamespace = "frr-k8s-system"

// Backend applies a node's BGP state through frr-k8s.
type Backend struct {
	opts     Options
	log      logr.Logger
	reader   client.Reader // the backend's own cache
	writer   client.Client
	recorder events.EventRecorder
	wake     chan struct{}
	now      func() time.Time
	// configEvent: the stored FRRConfiguration changed (our write, a
	// user's edit, a deletion): the writer compares it with what it wrote.
	configEvent atomic.Bool

	mu       sync.Mutex
	asn      uint32
	routerID netip.Addr
	peers    []bgp.Peer
	paths    map[netip.Prefix]bgp.Path
	applied  bool

	// Written by the writer, read by Status.
	statusMu sync.Mutex
	rendered map[string]int // peers in the written FRRConfiguration -> prefixes sent
	sessions []bgp.PeerStatus
	problem  string // what frr-k8s last reported wrong, "" if nothing
	reported bool   // frr-k8s has reported on the node (FRRNodeState)
	writes   int
}

// New creates the backend and adds its cache and writer to the manager.
func New(mgr ctrl.Manager, opts Options) (*Backend, error) {
	if opts.NodeName == "" {
		return nil, errors.New("frr-k8s backend: NodeName is required")
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 200 * time.Millisecond
	}
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	ours := labels.SelectorFromSet(OwnLabels(opts.NodeName))
	inNS := map[string]cache.Config{opts.Namespace: {}}
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:       mgr.GetHTTPClient(),
		Scheme:           mgr.GetScheme(),
		Mapper:           mgr.GetRESTMapper(),
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&frrv1beta1.FRRConfiguration{}: {Namespaces: inNS, Label: ours},
			&corev1.Secret{}:               {Namespaces: inNS, Label: ours},
			&frrv1beta1.BGPSessionState{}: {Namespaces: inNS,
				Label: labels.SelectorFromSet(labels.Set{frrk8s.SessionNodeLabel: opts.NodeName})},
			&frrv1beta1.FRRNodeState{}: {Field: fields.OneTermEqualSelector("metadata.name", opts.NodeName)},
			&corev1.Node{}:             {Field: fields.OneTermEqualSelector("metadata.name", opts.NodeName)},
			&v1alpha1.BGPNodeStatus{}:  {Field: fields.OneTermEqualSelector("metadata.name", opts.NodeName)},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("frr-k8s backend cache: %w", err)
	}
	if err := scopedcache.AddToManager(mgr, c); err != nil {
		return nil, err
	}
	b := &Backend{
		opts:     opts,
		log:      mgr.GetLogger().WithName("frr-k8s").WithValues("node", opts.NodeName),
		reader:   c,
		writer:   mgr.GetClient(),
		recorder: mgr.GetEventRecorder("bgplb-speaker"),
		wake:     make(chan struct{}, 1),
		now:      time.Now,
		paths:    map[netip.Prefix]bgp.Path{},
	}
	// Wake the writer when our objects change under it (deleted by the
	// garbage collector or a user) and when frr-k8s reports something.
	cfgInf, err := c.GetInformer(context.Background(), &frrv1beta1.FRRConfiguration{})
	if err != nil {
		return nil, fmt.Errorf("frr-k8s backend: FRRConfiguration informer: %w", err)
	}
	if _, err := cfgInf.AddEventHandler(wakeOn(func() { b.configEvent.Store(true); b.signal() })); err != nil {
		return nil, fmt.Errorf("frr-k8s backend: watching FRRConfigurations: %w", err)
	}
	for _, obj := range []client.Object{&frrv1beta1.FRRNodeState{}, &frrv1beta1.BGPSessionState{}, &v1alpha1.BGPNodeStatus{}} {
		inf, err := c.GetInformer(context.Background(), obj)
		if err != nil {
			return nil, fmt.Errorf("frr-k8s backend: informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(wakeOn(b.signal)); err != nil {
			return nil, fmt.Errorf("frr-k8s backend: watching %T: %w", obj, err)
		}
	}
	if err := mgr.Add(&writer{b: b}); err != nil {
		return nil, fmt.Errorf("adding the frr-k8s writer: %w", err)
	}
	return b, nil
}

var (
	_ speaker.BGP               = (*Backend)(nil)
	_ speaker.ConditionReporter = (*Backend)(nil)
)

// Apply records the node's whole desired state; the writer expresses it.
// It returns what frr-k8s cannot express (those peers are left out), as
// bgp.Speaker.Apply returns its invalid peers.
func (b *Backend) Apply(_ context.Context, desired bgp.State) error {
	b.mu.Lock()
	b.asn, b.routerID = desired.ASN, desired.RouterID
	b.peers = append([]bgp.Peer(nil), desired.Peers...)
	clear(b.paths)
	for _, p := range desired.Paths {
		b.paths[p.Prefix] = p
	}
	b.applied = true
	// Checking the peers needs no paths: render them alone.
	_, err := frrk8s.Render(bgp.State{ASN: desired.ASN, RouterID: desired.RouterID, Peers: desired.Peers}, b.renderOptions(nil))
	b.mu.Unlock()
	b.signal()
	return err
}

// UpdatePaths adds or replaces some paths and withdraws some prefixes. Its
// cost is the number of paths given; the write follows within the
// debounce interval.
func (b *Backend) UpdatePaths(_ context.Context, upsert []bgp.Path, withdraw []netip.Prefix) error {
	b.mu.Lock()
	for _, p := range upsert {
		b.paths[p.Prefix] = p
	}
	for _, p := range withdraw {
		delete(b.paths, p)
	}
	b.mu.Unlock()
	b.signal()
	return nil
}

// Status returns the sessions frr-k8s last reported for the peers of the
// written FRRConfiguration. While frr-k8s reports a problem with the
// node's configuration, every session carries it as its last error.
func (b *Backend) Status(ctx context.Context) ([]bgp.PeerStatus, error) {
	var list frrv1beta1.BGPSessionStateList
	if err := b.reader.List(ctx, &list, client.InNamespace(b.opts.Namespace)); err != nil {
		return nil, fmt.Errorf("listing BGPSessionStates: %w", err)
	}
	b.mu.Lock()
	peers := b.peers
	b.mu.Unlock()
	b.statusMu.Lock()
	defer b.statusMu.Unlock()
	b.sessions = frrk8s.Sessions(peers, b.rendered, list.Items, b.sessions, b.now())
	out := make([]bgp.PeerStatus, len(b.sessions))
	copy(out, b.sessions)
	if b.problem == "" {
		return out, nil
	}
	reported := make(map[string]bool, len(out))
	for i := range out {
		out[i].LastError = b.problem
		reported[out[i].Name] = true
	}
	// Peers frr-k8s reports nothing about (yet) carry the problem too, in
	// the state the node status would show anyway.
	for _, p := range peers {
		if _, ok := b.rendered[p.Name]; ok && !reported[p.Name] {
			out = append(out, bgp.PeerStatus{Name: p.Name, Address: p.Address, State: unknownState, LastError: b.problem})
		}
	}
	return out, nil
}

// Conditions implements speaker.ConditionReporter: ConditionFRRK8sConfigured.
func (b *Backend) Conditions(now time.Time) []metav1.Condition {
	b.statusMu.Lock()
	defer b.statusMu.Unlock()
	c := metav1.Condition{Type: ConditionFRRK8sConfigured, LastTransitionTime: metav1.NewTime(now.Truncate(time.Second))}
	switch {
	case b.problem != "":
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonFRRK8sFailed, b.problem
	case b.reported:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonFRRK8sApplied, "frr-k8s applied the node's FRRConfigurations"
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, ReasonFRRK8sPending, "frr-k8s has not reported on this node yet (FRRNodeState)"
	}
	return []metav1.Condition{c}
}

// Writes is the number of FRRConfiguration writes so far (for tests and
// benchmarks).
func (b *Backend) Writes() int {
	b.statusMu.Lock()
	defer b.statusMu.Unlock()
	return b.writes
}

func (b *Backend) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// snapshot copies the recorded state (O(paths)); ok is false before the
// first Apply.
func (b *Backend) snapshot() (st bgp.State, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.applied {
		return st, false
	}
	st = bgp.State{ASN: b.asn, RouterID: b.routerID, Peers: b.peers, Paths: make([]bgp.Path, 0, len(b.paths))}
	for p := range maps.Values(b.paths) {
		st.Paths = append(st.Paths, p)
	}
	return st, true
}

// renderOptions selects the node by its hostname label, as frr-k8s's own
// examples do, falling back to the node name.
func (b *Backend) renderOptions(node *corev1.Node) frrk8s.Options {
	host := b.opts.NodeName
	if node != nil && node.Labels[corev1.LabelHostname] != "" {
		host = node.Labels[corev1.LabelHostname]
	}
	return frrk8s.Options{NodeName: b.opts.NodeName, Namespace: b.opts.Namespace,
		NodeSelector: map[string]string{corev1.LabelHostname: host}}
}

// OwnLabels are the labels of the node's objects.
func OwnLabels(node string) map[string]string {
	return map[string]string{ManagedByLabel: ManagedBy, NodeLabel: NodeLabelValue(node)}
}

// NodeLabelValue is a node name as a label value (at most 63 characters:
// longer names are cut and given a hash).
func NodeLabelValue(node string) string {
	if len(node) <= 63 {
		return node
	}
	return frrk8s.ShortName(node, 63)
}
