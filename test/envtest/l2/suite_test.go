// Package l2_test runs the L2 mode of three speakers (node-a, node-b,
// node-c) in-process against a real kube-apiserver and etcd, beside the
// real IPAM controller, and checks what a user sees: the Service's
// bgplb.io/L2Announced condition and L2OwnerChanged events, which node
// answers for each address, and how the owner follows the eligibility
// rules (nodeSelector, Ready, the exclusion label, speaker alive, link up,
// endpoints for externalTrafficPolicy: Local, pools, sharing, Node
// deletion).
//
// The speakers' heartbeats are real UDP on loopback: each node's InternalIP
// is its own loopback address (127.0.0.11-13) and its detector listens
// there. The election and the API server are real. Only the node's links
// and the ARP/NDP responder are replaced (l2mode.Options.Links, WatchLinks,
// Responder): the links by a list the test sets, the responder by a
// recorder of what it was told to answer for. The real responder's
// packets are proven in network namespaces (l2/netns_test.go), by the netns
// lab (test/e2e, label l2) and on real nodes (test/cluster).
package l2_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bgplb/bgplb/controllers/ipam"
	"github.com/bgplb/bgplb/controllers/l2mode"
	"github.com/bgplb/bgplb/l2"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

var (
	env *framework.Env
	k8s client.Client
	ctx = context.Background()

	stopIPAM context.CancelFunc
	ipamDone chan struct{}

	// nodes are the three speakers, by name.
	nodes     = map[string]*speakerNode{}
	nodeNames = []string{"node-a", "node-b", "node-c"}
	hbPort    int
)

// Heartbeats every 100 ms, a peer dead after 1 s silent: short enough for
// a quick suite, long enough not to flap on this loaded 2-core machine.
const (
	hbInterval = 100 * time.Millisecond
	hbTimeout  = time.Second
	// segment is the nodes' eth0 subnet; the pools of the specs lie in it,
	// so eth0 is the interface that serves their addresses.
	segment = "198.51.100.0/24"
)

func TestL2(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "L2 mode: three speakers and the IPAM controller (envtest)")
}

func debugLevel() int8 {
	if os.Getenv("BGPLB_TEST_DEBUG") != "" {
		return 1
	}
	return 0
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	SetDefaultConsistentlyDuration(2 * time.Second)
	SetDefaultConsistentlyPollingInterval(100 * time.Millisecond)
	// BGPLB_TEST_DEBUG=1 shows the reconcilers' V(1) lines.
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.Level(zapcore.Level(-debugLevel()))))

	var err error
	env, err = framework.Start(framework.Options{})
	Expect(err).NotTo(HaveOccurred())
	k8s = env.Client
	hbPort = freeUDPPort()

	// The real IPAM controller hands out the addresses, as `bgplb controller` does.
	mgr := newManager("controller")
	Expect(ipam.Setup(mgr, ipam.Options{DefaultClass: true})).To(Succeed())
	var mctx context.Context
	mctx, stopIPAM = context.WithCancel(ctx)
	ipamDone = make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(ipamDone)
		Expect(mgr.Start(mctx)).To(Succeed())
	}()

	for i, name := range nodeNames {
		n := &speakerNode{name: name, ip: fmt.Sprintf("127.0.0.%d", 11+i), resp: &recordingResponder{}}
		n.links = upLinks()
		nodes[name] = n
		createNode(n)
		n.start()
	}
})

var _ = AfterSuite(func() {
	for _, n := range nodes {
		n.stop()
	}
	if stopIPAM != nil {
		stopIPAM()
		<-ipamDone
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

func newManager(name string) ctrl.Manager {
	GinkgoHelper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 framework.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Three speakers (and restarts) register the same controller names.
		Controller: crconfig.Controller{SkipNameValidation: ptr.To(true)},
		Logger:     ctrl.Log.WithName(name),
	})
	Expect(err).NotTo(HaveOccurred())
	return mgr
}

// freeUDPPort is a port free on the first node's address; the three nodes
// listen on it, each on its own loopback address.
func freeUDPPort() int {
	GinkgoHelper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.11")})
	Expect(err).NotTo(HaveOccurred())
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// upLinks is a node's eth0, up, on the segment.
func upLinks() []l2.Link {
	return []l2.Link{{Name: "eth0", Prefixes: []netip.Prefix{netip.MustParsePrefix(segment)}}}
}

// speakerNode is one node's speaker: its L2 reconciler, heartbeat and
// (recorded) responder, in a manager of its own as in its own process.
type speakerNode struct {
	name, ip string
	resp     *recordingResponder

	mu     sync.Mutex
	links  []l2.Link
	notify func()

	cancel context.CancelFunc
	done   chan struct{}
}

// start runs the node's speaker as `bgplb speaker --l2-heartbeat-port` does,
// with the heartbeat on the node's own address.
func (n *speakerNode) start() {
	GinkgoHelper()
	if n.cancel != nil {
		return // running
	}
	mgr := newManager(n.name)
	Expect(l2mode.Setup(mgr, l2mode.Options{
		NodeName: n.name, DefaultClass: true,
		HeartbeatPort: hbPort, HeartbeatHost: n.ip, HeartbeatInterval: hbInterval, HeartbeatTimeout: hbTimeout,
		Links: n.currentLinks, WatchLinks: n.watchLinks, Responder: n.resp,
	})).To(Succeed())
	mctx, cancel := context.WithCancel(ctx)
	n.cancel, n.done = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mctx)).To(Succeed())
	}(n.done)
}

// stop stops the node's speaker (its heartbeats end with it) and forgets
// what its responder answered: a stopped speaker answers nothing.
func (n *speakerNode) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
	n.cancel = nil
	n.resp.Set(nil) //nolint:errcheck // the recorder never fails
}

func (n *speakerNode) currentLinks() ([]l2.Link, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.links), nil
}

// watchLinks stands in for the netlink watch: setLinks calls changed.
func (n *speakerNode) watchLinks(_ context.Context, changed func(), _ func(error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notify = changed
	return nil
}

// setLinks changes the node's links that are up, as a carrier loss or
// return would, and tells the speaker as its netlink watch would.
func (n *speakerNode) setLinks(links []l2.Link) {
	n.mu.Lock()
	n.links = links
	notify := n.notify
	n.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// recordingResponder records what the reconciler tells the responder to
// answer for; it sends nothing.
type recordingResponder struct {
	mu     sync.Mutex
	answer map[netip.Addr][]string
	ever   map[netip.Addr]bool // told to answer at some point
}

func (r *recordingResponder) Set(want map[netip.Addr][]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = maps.Clone(want)
	if r.ever == nil {
		r.ever = map[netip.Addr]bool{}
	}
	for ip := range want {
		r.ever[ip] = true
	}
	return nil
}

// answeredEver reports whether the node was ever told to answer for ip.
func (r *recordingResponder) answeredEver(ip netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ever[ip]
}

func (r *recordingResponder) Announce([]netip.Addr) {}

func (r *recordingResponder) Stats() l2.Stats { return l2.Stats{} }

// answers returns the interfaces the node answers for ip on (nil: none).
func (r *recordingResponder) answers(ip netip.Addr) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.answer[ip]
}

var _ l2mode.Responder = (*recordingResponder)(nil)
