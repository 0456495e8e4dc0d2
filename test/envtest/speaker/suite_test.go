// Package speaker_test runs the speaker's node reconciler in-process against
// a real kube-apiserver (envtest) and real GoBGP routers on loopback
// (bgp/bgptest), and checks what the routers receive and what the speaker
// reports in BGPNodeStatus. The controller's BGPPeer status reconciler
// runs beside it, as in a cluster, so BGPPeer status is checked too.
package speaker_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
	"github.com/bgplb/bgplb/bgp/bgptest"
	"github.com/bgplb/bgplb/controllers/peerstatus"
	"github.com/bgplb/bgplb/controllers/speaker"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

const (
	nodeName  = "node-a"
	localASN  = 64512
	drainTime = 3 * time.Second
)

var (
	env *framework.Env
	k8s client.Client
	ctx = context.Background()

	// The routers: eBGP with graceful restart, iBGP, and eBGP over IPv6.
	rtrA, rtrB, rtr6 *bgptest.Router
	speakerV4        = netip.MustParseAddr("127.0.0.1")
	speakerV6        = netip.MustParseAddr("::1")

	node *corev1.Node
	run  *speakerRun
	// stopPeerStatus stops the controller's BGPPeer status reconciler.
	stopPeerStatus context.CancelFunc
)

func TestSpeaker(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Speaker node reconciler (envtest + GoBGP routers)")
}

// speakerRun is one speaker process: a manager with the speaker's
// controllers and an embedded BGP server.
type speakerRun struct {
	bgp    *bgp.Speaker
	handle *speaker.Handle
	cancel context.CancelFunc
	done   chan error
}

func logger() logr.Logger {
	if os.Getenv("BGPLB_TEST_LOG") == "" {
		return logr.Discard()
	}
	return zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
}

// startSpeaker starts a speaker for node-a, as `bgplb speaker` does.
func startSpeaker() *speakerRun {
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 framework.Scheme,
		Logger:                 logger(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// A restarted speaker registers its controllers again in this process.
		Controller: crconfig.Controller{SkipNameValidation: ptrTo(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	spk, err := bgp.New(bgp.Options{Logger: logger().WithName("bgp")})
	Expect(err).NotTo(HaveOccurred())
	h, err := speaker.Setup(mgr, speaker.Options{NodeName: nodeName, BGP: spk, DrainTime: drainTime})
	Expect(err).NotTo(HaveOccurred())
	mctx, cancel := context.WithCancel(ctx)
	r := &speakerRun{bgp: spk, handle: h, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- mgr.Start(mctx) }()
	return r
}

// startPeerStatus runs the controller's BGPPeer status reconciler, as
// `bgplb controller` does, for the whole suite.
func startPeerStatus() {
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 framework.Scheme,
		Logger:                 logger().WithName("controller"),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(peerstatus.Setup(mgr)).To(Succeed())
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	stopPeerStatus = func() {
		cancel()
		Eventually(done).WithTimeout(time.Minute).Should(Receive(BeNil()))
	}
}

// stop stops the speaker as `bgplb speaker` does on SIGTERM (graceful) or
// SIGINT (not graceful).
func (r *speakerRun) stop(graceful bool) {
	r.cancel()
	Eventually(r.done).WithTimeout(time.Minute).Should(Receive(BeNil()))
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	Expect(r.bgp.Stop(sctx, graceful)).To(Succeed())
	Expect(r.handle.MarkStopped(sctx, "stopped by the test")).To(Succeed())
}

func ptrTo[T any](v T) *T { return &v }

func startRouter(addr string, asn uint32, neighbor netip.Addr, gr bool) *bgptest.Router {
	r, err := bgptest.Start(bgptest.Options{ASN: asn, Address: netip.MustParseAddr(addr)})
	Expect(err).NotTo(HaveOccurred())
	Expect(r.AddNeighbor(bgptest.Neighbor{Address: neighbor, ASN: localASN, GracefulRestart: gr})).To(Succeed())
	return r
}

// bgpPeer is a BGPPeer for a router: the speaker dials it from source.
func bgpPeer(name string, r *bgptest.Router, source netip.Addr) *v1alpha1.BGPPeer {
	return &v1alpha1.BGPPeer{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.BGPPeerSpec{
			Address:          r.Address().String(),
			ASN:              int64(r.ASN()),
			LocalASN:         localASN,
			Port:             int32(r.Port()),
			SourceAddress:    source.String(),
			ConnectRetryTime: &metav1.Duration{Duration: time.Second},
		},
	}
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(60 * time.Second) // the machine is shared and loaded
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	SetDefaultConsistentlyDuration(time.Second)

	var err error
	env, err = framework.Start(framework.Options{})
	Expect(err).NotTo(HaveOccurred())
	k8s = env.Client

	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.InstallNamespace}})).To(Succeed())

	node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{"kubernetes.io/hostname": nodeName}}}
	Expect(k8s.Create(ctx, node)).To(Succeed())
	node.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeHostName, Address: nodeName},
		{Type: corev1.NodeInternalIP, Address: "192.0.2.1"},
	}
	Expect(k8s.Status().Update(ctx, node)).To(Succeed())

	rtrA = startRouter("127.0.0.2", 65001, speakerV4, true)
	rtrB = startRouter("127.0.0.3", localASN, speakerV4, false)
	rtr6 = startRouter("::1", 65002, speakerV6, false)

	a := bgpPeer("rtr-a", rtrA, speakerV4)
	a.Spec.GracefulRestart = &v1alpha1.GracefulRestart{Enabled: true, RestartTime: &metav1.Duration{Duration: 120 * time.Second}}
	for _, p := range []*v1alpha1.BGPPeer{a, bgpPeer("rtr-b", rtrB, speakerV4), bgpPeer("rtr-6", rtr6, speakerV6)} {
		Expect(k8s.Create(ctx, p)).To(Succeed())
	}

	startPeerStatus()
	run = startSpeaker()
	for _, c := range []struct {
		r *bgptest.Router
		n netip.Addr
	}{{rtrA, speakerV4}, {rtrB, speakerV4}, {rtr6, speakerV6}} {
		Eventually(func() bool { s, _ := c.r.Session(c.n); return s.Established() }).
			Should(BeTrue(), "session with router %v", c.r.Address())
	}
})

var _ = AfterSuite(func() {
	if stopPeerStatus != nil {
		stopPeerStatus()
	}
	if run != nil {
		run.cancel()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = run.bgp.Stop(sctx, false)
		cancel()
	}
	for _, r := range []*bgptest.Router{rtrA, rtrB, rtr6} {
		if r != nil {
			r.Stop()
		}
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// uniq makes object names unique per spec.
var seq int

func uniq(prefix string) string {
	seq++
	return fmt.Sprintf("%s-%d", prefix, seq)
}
