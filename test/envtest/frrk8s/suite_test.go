// Package frrk8s_test runs the speaker with the frr-k8s backend in-process
// against a real kube-apiserver (envtest) that has frr-k8s's CRDs from the
// pinned module installed, and checks what a user of frr-k8s sees: the
// FRRConfiguration of each node (its peers, prefixes, communities, local
// preference, ETP Local, drain), how often and how it is written, the
// password Secrets, cleanup when the node switches back to GoBGP, and
// BGPNodeStatus / BGPPeer status fed from the BGPSessionState and
// FRRNodeState objects frr-k8s writes (written here as frr-k8s would).
// No FRR runs here: whether FRR accepts the result is the lab's question.
package frrk8s_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
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
	"github.com/bgplb/bgplb/controllers/frrk8s"
	"github.com/bgplb/bgplb/controllers/peerstatus"
	"github.com/bgplb/bgplb/controllers/speaker"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

const (
	frrNS     = "frr-k8s-system"
	localASN  = 64512
	drainTime = 2 * time.Second
	debounce  = 300 * time.Millisecond
)

var (
	env      *framework.Env
	k8s      client.WithWatch
	ctx      = context.Background()
	speakers = map[string]*speakerRun{}
	// stopPeerStatus stops the controller's BGPPeer status reconciler.
	stopPeerStatus func()
)

func TestFRRK8s(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Speaker with the frr-k8s backend (envtest + frr-k8s CRDs)")
}

// speakerRun is one node's speaker process with the frr-k8s backend.
type speakerRun struct {
	backend *frrk8s.Backend
	cancel  context.CancelFunc
	done    chan error
}

func logger() logr.Logger {
	if os.Getenv("BGPLB_TEST_LOG") == "" {
		return logr.Discard()
	}
	return zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
}

// startSpeaker starts node's speaker as `bgplb speaker --bgp-backend=frr-k8s`
// does (cmd/bgplb/speaker_frrk8s.go).
func startSpeaker(node string) *speakerRun {
	GinkgoHelper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 framework.Scheme,
		Logger:                 logger().WithValues("node", node),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             crconfig.Controller{SkipNameValidation: ptrTo(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	b, err := frrk8s.New(mgr, frrk8s.Options{NodeName: node, Namespace: frrNS, Debounce: debounce})
	Expect(err).NotTo(HaveOccurred())
	_, err = speaker.Setup(mgr, speaker.Options{NodeName: node, BGP: b, DrainTime: drainTime, StatusInterval: 200 * time.Millisecond})
	Expect(err).NotTo(HaveOccurred())
	mctx, cancel := context.WithCancel(ctx)
	r := &speakerRun{backend: b, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- mgr.Start(mctx) }()
	return r
}

func (r *speakerRun) stop() {
	if r.done == nil {
		return
	}
	r.cancel()
	defer func() { r.done = nil }()
	Eventually(r.done).WithTimeout(time.Minute).Should(Receive(BeNil()))
}

func startPeerStatus() context.CancelFunc {
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: framework.Scheme, Logger: logger().WithName("controller"),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(peerstatus.Setup(mgr)).To(Succeed())
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	return func() { cancel(); Eventually(done).WithTimeout(time.Minute).Should(Receive(BeNil())) }
}

func ptrTo[T any](v T) *T { return &v }

func createNode(name, ip string) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}}}
	Expect(k8s.Create(ctx, n)).To(Succeed())
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	Expect(k8s.Status().Update(ctx, n)).To(Succeed())
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	SetDefaultConsistentlyDuration(time.Second)

	crds, err := framework.FRRK8sCRDs()
	Expect(err).NotTo(HaveOccurred())
	env, err = framework.Start(framework.Options{CRDs: crds})
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.NewWithWatch(env.Config, client.Options{Scheme: framework.Scheme})
	Expect(err).NotTo(HaveOccurred())
	for _, ns := range []string{v1alpha1.InstallNamespace, frrNS} {
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	createNode("node-a", "192.0.2.1")
	createNode("node-b", "192.0.2.2")

	// Peer addresses on loopback: nothing here dials them, but a GoBGP
	// speaker started by the switch-back spec would.
	Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.InstallNamespace, Name: "rtr-a-auth"},
		Data:       map[string][]byte{"md5": []byte("s3cret")},
	})).To(Succeed())
	for _, p := range []*v1alpha1.BGPPeer{
		{ObjectMeta: metav1.ObjectMeta{Name: "rtr-a"}, Spec: v1alpha1.BGPPeerSpec{
			Address: "127.0.0.2", ASN: 65001, LocalASN: localASN, Port: 1790, SourceAddress: "127.0.0.1",
			HoldTime: &metav1.Duration{Duration: 9 * time.Second}, EBGPMultihop: ptrTo(int32(2)),
			PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: "rtr-a-auth", Key: "md5"},
			GracefulRestart:   &v1alpha1.GracefulRestart{Enabled: true},
			BFD:               &v1alpha1.BFD{Enabled: true, MinReceiveInterval: &metav1.Duration{Duration: 100 * time.Millisecond}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "rtr-b"}, Spec: v1alpha1.BGPPeerSpec{Address: "127.0.0.3", ASN: localASN, LocalASN: localASN}},
		{ObjectMeta: metav1.ObjectMeta{Name: "rtr-6"}, Spec: v1alpha1.BGPPeerSpec{Address: "::1", ASN: 65002, LocalASN: localASN}},
	} {
		Expect(k8s.Create(ctx, p)).To(Succeed())
	}
	stopPeerStatus = startPeerStatus()
	for _, n := range []string{"node-a", "node-b"} {
		speakers[n] = startSpeaker(n)
	}
})

var _ = AfterSuite(func() {
	for _, r := range speakers {
		if r != nil {
			r.stop()
		}
	}
	if stopPeerStatus != nil {
		stopPeerStatus()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

var seq int

func uniq(prefix string) string {
	seq++
	return fmt.Sprintf("%s-%d", prefix, seq)
}

// frrConfig polls a node's FRRConfiguration (nil while there is none).
func frrConfig(node string) func() *frrv1beta1.FRRConfiguration {
	return func() *frrv1beta1.FRRConfiguration {
		var c frrv1beta1.FRRConfiguration
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: frrNS, Name: "bgplb-" + node}, &c); err != nil {
			return nil
		}
		return &c
	}
}
