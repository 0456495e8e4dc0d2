package l2mode

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/heartbeat"
	"github.com/bgplb/bgplb/internal/l2election"
	"github.com/bgplb/bgplb/l2"
)

// Responder is what the reconciler needs of *l2.Responder.
type Responder interface {
	Set(map[netip.Addr][]string) error
	Announce([]netip.Addr)
	Stats() l2.Stats
}

// Detector is what the reconciler needs of *heartbeat.Detector.
type Detector interface {
	SetPeers(map[string][]netip.AddrPort)
	SetPayload(json.RawMessage)
	Peers() map[string]heartbeat.Peer
	Generation() uint64
}

// Reconciler is the speaker's L2 reconciler. Every change (a watched
// object, a peer's heartbeat state, a local link) enqueues its one key; a
// run gathers everything, elects the owners, and makes the responder
// answer for this node's addresses.
type Reconciler struct {
	NodeName      string
	Reader        client.Reader
	Writer        client.Client
	Responder     Responder
	Detector      Detector
	Links         func() ([]l2.Link, error)
	HeartbeatPort int
	DefaultClass  bool
	Recorder      events.EventRecorder
	// APIStale reports whether this speaker has lost the API server (nil:
	// never).
	APIStale func() bool
	// APIReader reads past the cache (nil: the condition is written
	// again whenever the cache lags behind this node's own last write).
	APIReader client.Reader

	mu          sync.Mutex
	followUps   followUps
	mine        map[netip.Addr]l2election.Owner
	contested   map[netip.Addr]bool
	lastPayload string
	generation  uint64
	// written is the condition text this node last wrote per Service.
	written map[types.NamespacedName]string
	// active: some L2Advertisement exists (the API probe runs only then).
	active atomic.Bool
	// watches starts the watches of what L2 mode reads once an
	// L2Advertisement exists (nil in tests that call Reconcile directly).
	watches *lazyWatches
}

// pendingRetry is when a run that held addresses back for a peer's first
// heartbeat runs again, should no heartbeat or expiry wake it first.
const pendingRetry = 100 * time.Millisecond

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	log := logf.FromContext(ctx)

	links, err := r.Links()
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("reading the node's links: %w", err)
	}
	stale := r.APIStale != nil && r.APIStale()
	in, nodes, err := r.gather(ctx)
	if err != nil {
		r.publish(payload{Links: links, APIStale: stale})
		return ctrl.Result{}, err
	}
	r.active.Store(len(in.Advs) > 0)
	in.SelfLinks = links
	d := Compute(in)
	owners := l2election.Elect(d.Nodes, d.Addresses)

	r.Detector.SetPeers(peerAddrs(d.Selected, nodes, r.HeartbeatPort))
	alive := 0
	for _, p := range in.Peers {
		if p.Alive {
			alive++
		}
	}
	peersAlive.Set(float64(alive))

	// Views differ while they catch up or while a speaker has lost the
	// API server: when a peer claims an address this node elected itself
	// for, exactly one of the two yields (l2election.Yields).
	keys := map[netip.Addr]string{}
	for i := range d.Addresses {
		keys[d.Addresses[i].IP] = d.Addresses[i].Key
	}
	claims := peerClaims(in.Peers)
	// While a peer's links are unknown this node keeps what it answers for
	// but takes nothing new: electing itself meanwhile made every node
	// answer for every address for a moment when the first L2Advertisement
	// appeared (seen on the real-node cluster: the router kept the wrong
	// MAC). Bounded by the first heartbeat, or by the detector's timeout for
	// a peer that never speaks.
	pending := peersPending(d.Selected, r.NodeName, in.Peers)
	held := 0
	want := map[netip.Addr][]string{}
	mine := map[netip.Addr]l2election.Owner{}
	contested := map[netip.Addr]bool{}
	for ip, o := range owners {
		if o.Node != r.NodeName {
			continue
		}
		if _, had := r.mine[ip]; pending && !had {
			held++
			continue
		}
		yield := false
		for _, c := range claims[ip] {
			contested[ip] = true
			if l2election.Yields(keys[ip], r.NodeName, stale, c) {
				yield = true
				log.V(1).Info("another node answers for the address too: yielding", "address", ip, "node", c.Node, "itsViewStale", c.APIStale, "ourViewStale", stale)
				break
			}
		}
		if !yield {
			want[ip], mine[ip] = o.Interfaces, o
		}
	}
	setErr := r.Responder.Set(want)
	r.publish(payload{Links: links, Claims: sortedAddrs(mine), APIStale: stale})
	// A peer died or came back, or this process was frozen: another node
	// may have answered for addresses this node kept (it took over while
	// this one was silent, and the segment followed its gratuitous ARP).
	// Re-announce the ones kept; the gained ones were announced by Set.
	// Likewise when a conflict over an address began or ended.
	g := r.Detector.Generation()
	var kept []netip.Addr
	for ip := range mine {
		if _, had := r.mine[ip]; had && (g != r.generation || contested[ip] != r.contested[ip]) {
			kept = append(kept, ip)
		}
	}
	r.generation, r.contested = g, contested
	// Gained addresses get a second burst after followUpDelay.
	now := time.Now()
	if r.followUps == nil {
		r.followUps = followUps{}
	}
	due, next := r.followUps.due(now, func(ip netip.Addr) bool { _, ok := mine[ip]; return ok })
	kept = append(kept, due...)
	if len(kept) > 0 {
		r.Responder.Announce(kept)
	}
	for ip := range mine {
		if _, had := r.mine[ip]; !had {
			r.followUps[ip] = now.Add(followUpDelay)
			if next == 0 || followUpDelay < next {
				next = followUpDelay
			}
			ownershipChanges.WithLabelValues("gained").Inc()
			log.Info("answering ARP/NDP for the address", "address", ip, "interfaces", mine[ip].Interfaces)
		}
	}
	for ip := range r.mine {
		if _, has := mine[ip]; !has {
			ownershipChanges.WithLabelValues("lost").Inc()
			log.Info("no longer answering for the address", "address", ip, "owner", owners[ip].Node)
		}
	}
	r.mine = mine
	ownedAddresses.Set(float64(len(mine)))

	// A peer alive but not heard from yet (the detector just added it)
	// has unknown links, so this node's owners may not be the cluster's:
	// its first heartbeat runs this again, and the condition is written
	// then, once, instead of once per node that elected itself meanwhile.
	if !pending {
		r.writeStatus(ctx, in.Services, d, owners)
	}
	if held > 0 {
		log.V(1).Info("waiting for the peers' first heartbeats before answering", "addresses", held)
		if next == 0 || pendingRetry < next {
			next = pendingRetry
		}
	}
	if setErr != nil {
		// Some interface could not be served (no such interface, no
		// address of the family): retry, the rest is served meanwhile.
		log.Error(setErr, "answering for some addresses")
		if next == 0 || 5*time.Second < next {
			next = 5 * time.Second
		}
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// publishLinks puts the node's links in the heartbeats if no run has
// published anything yet.
func (r *Reconciler) publishLinks() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastPayload != "" {
		return
	}
	if ls, err := r.Links(); err == nil {
		r.publish(payload{Links: ls})
	}
}

// publish sends the payload in the heartbeats when it changed.
func (r *Reconciler) publish(p payload) {
	if b := p.encode(); string(b) != r.lastPayload {
		r.lastPayload = string(b)
		r.Detector.SetPayload(b)
	}
}

func sortedAddrs(m map[netip.Addr]l2election.Owner) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for ip := range m {
		out = append(out, ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// gather reads the inputs from the cache.
func (r *Reconciler) gather(ctx context.Context) (Inputs, []corev1.Node, error) {
	in := Inputs{Self: r.NodeName, DefaultClass: r.DefaultClass, Peers: r.Detector.Peers()}
	var advs v1alpha1.L2AdvertisementList
	if err := r.Reader.List(ctx, &advs); err != nil {
		return in, nil, fmt.Errorf("listing L2Advertisements: %w", err)
	}
	if len(advs.Items) == 0 {
		// L2 mode is off: nothing to read.
		return in, nil, nil
	}
	if r.watches != nil {
		if err := r.watches.ensure(ctx); err != nil {
			return in, nil, err
		}
	}
	for i := range advs.Items {
		in.Advs = append(in.Advs, &advs.Items[i])
	}
	var nodes corev1.NodeList
	if err := r.Reader.List(ctx, &nodes); err != nil {
		return in, nil, fmt.Errorf("listing Nodes: %w", err)
	}
	for i := range nodes.Items {
		in.Nodes = append(in.Nodes, &nodes.Items[i])
	}
	var pools v1alpha1.IPPoolList
	if err := r.Reader.List(ctx, &pools); err != nil {
		return in, nil, fmt.Errorf("listing IPPools: %w", err)
	}
	in.Pools = map[string]*v1alpha1.IPPool{}
	for i := range pools.Items {
		in.Pools[pools.Items[i].Name] = &pools.Items[i]
	}
	var allocs v1alpha1.IPAllocationList
	if err := r.Reader.List(ctx, &allocs); err != nil {
		return in, nil, fmt.Errorf("listing IPAllocations: %w", err)
	}
	in.Services = map[types.NamespacedName]*corev1.Service{}
	in.Slices = map[types.NamespacedName][]*discoveryv1.EndpointSlice{}
	for i := range allocs.Items {
		a := &allocs.Items[i]
		in.Allocations = append(in.Allocations, a)
		for _, ref := range a.Spec.Services {
			key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
			if _, seen := in.Services[key]; seen {
				continue
			}
			var svc corev1.Service
			if err := r.Reader.Get(ctx, key, &svc); err != nil {
				in.Services[key] = nil
				continue
			}
			in.Services[key] = &svc
			var sl discoveryv1.EndpointSliceList
			if err := r.Reader.List(ctx, &sl, client.InNamespace(key.Namespace),
				client.MatchingFields{indexSliceService: key.Name}); err != nil {
				return in, nil, fmt.Errorf("listing EndpointSlices of %s: %w", key, err)
			}
			for j := range sl.Items {
				in.Slices[key] = append(in.Slices[key], &sl.Items[j])
			}
		}
	}
	return in, nodes.Items, nil
}

// peerAddrs are the heartbeat addresses of the selected nodes: every
// InternalIP of each (IPv4 and IPv6 on a dual-stack node: either path
// keeps it alive).
func peerAddrs(selected []string, nodes []corev1.Node, port int) map[string][]netip.AddrPort {
	out := map[string][]netip.AddrPort{}
	for i := range nodes {
		n := &nodes[i]
		if !slices.Contains(selected, n.Name) {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				out[n.Name] = append(out[n.Name], netip.AddrPortFrom(ip, uint16(port)))
			}
		}
		if out[n.Name] == nil {
			out[n.Name] = []netip.AddrPort{}
		}
	}
	return out
}

// peersPending reports whether some selected node other than self has
// unknown links: not yet a heartbeat peer (the node was just selected, for
// instance by the first L2Advertisement) or counted alive without a
// heartbeat heard. Such a node may outrank this one for any address, and
// the election sees it as ineligible until its first heartbeat, or until it
// has been silent for the detector's timeout and is dead.
func peersPending(selected []string, self string, peers map[string]heartbeat.Peer) bool {
	for _, name := range selected {
		if name == self {
			continue
		}
		p, ok := peers[name]
		if !ok || (p.Alive && p.Payload == nil) {
			return true
		}
	}
	return false
}
