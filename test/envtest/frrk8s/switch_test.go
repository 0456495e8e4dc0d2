package frrk8s_test

import (
	"os/exec"
	"syscall"
	"time"

	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/test/envtest/framework"
)

// The real `bgplb speaker` binary, with the RBAC an install with
// config/frr-k8s gives it, switching a node between the backends:
// --bgp-backend=frr-k8s takes over the node's FRRConfiguration in place;
// stopping it leaves the configuration (FRR keeps the sessions while the
// speaker restarts); --bgp-backend=gobgp removes what bgplb wrote for the
// node and nothing else.
var _ = Describe("Switching backends with the bgplb binary", Ordered, func() {
	var bin, kubeconfig string

	BeforeAll(func() {
		dir := GinkgoT().TempDir()
		var err error
		bin, err = framework.Binary(dir)
		Expect(err).NotTo(HaveOccurred())
		By("granting a user exactly the speaker's generated roles plus config/components/frr-k8s's")
		kubeconfig, err = env.UserKubeconfig(ctx, dir, "bgplb-speaker-frr",
			"config/rbac/speaker/role.yaml", "config/components/frr-k8s/rbac.yaml")
		Expect(err).NotTo(HaveOccurred())
	})

	run := func(backend string) *exec.Cmd {
		GinkgoHelper()
		cmd := exec.Command(bin, "speaker", "--kubeconfig", kubeconfig, "--node-name", "node-a",
			"--bgp-backend", backend, "--frr-k8s-namespace", frrNS, "--frr-k8s-debounce", debounce.String(),
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0")
		cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
		Expect(cmd.Start()).To(Succeed())
		DeferCleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		return cmd
	}
	stop := func(cmd *exec.Cmd) {
		GinkgoHelper()
		Expect(cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		Eventually(done).WithTimeout(time.Minute).Should(Receive())
	}
	uidOf := func(node string) func() types.UID {
		return func() types.UID {
			if c := frrConfig(node)(); c != nil {
				return c.UID
			}
			return ""
		}
	}
	exists := func(obj client.Object) func() bool {
		return func() bool { return k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj) == nil }
	}

	It("takes over, keeps the config across a stop, and cleans up only its node's objects when switched back", func() {
		advertiseAll()
		other := &frrv1beta1.FRRConfiguration{
			ObjectMeta: metav1.ObjectMeta{Namespace: frrNS, Name: "other-node-a"},
			Spec:       frrv1beta1.FRRConfigurationSpec{BGP: frrv1beta1.BGPConfig{Routers: []frrv1beta1.Router{{ASN: localASN}}}},
		}
		create(other)
		announced("203.0.113.18", false, "node-a")
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElement("203.0.113.18/32"))
		uid := uidOf("node-a")()
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: frrNS, Name: "bgplb-node-a-rtr-a"}}
		Expect(exists(secret)()).To(BeTrue())

		By("the in-process speaker of node-a hands over to the binary with --bgp-backend=frr-k8s")
		speakers["node-a"].stop()
		frr := run("frr-k8s")
		announced("203.0.113.19", false, "node-a")
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElement("203.0.113.19/32"))
		Expect(uidOf("node-a")()).To(Equal(uid), "updated in place, not re-created")

		By("stopping it leaves the configuration to FRR")
		stop(frr)
		Consistently(uidOf("node-a")).Should(Equal(uid))

		By("--bgp-backend=gobgp removes node-a's FRRConfiguration and Secret, nothing else")
		gobgp := run("gobgp")
		Eventually(uidOf("node-a")).Should(BeEmpty())
		Eventually(exists(secret)).Should(BeFalse())
		Consistently(uidOf("node-b")).ShouldNot(BeEmpty())
		Expect(exists(other)()).To(BeTrue())
		stop(gobgp)

		By("back to frr-k8s in-process: the node's configuration is written again")
		speakers["node-a"] = startSpeaker("node-a")
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElement("203.0.113.19/32"))
	})
})
