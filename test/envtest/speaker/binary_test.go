package speaker_test

import (
	"bytes"
	"os/exec"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/bgptest"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

// The real `bgplb speaker` process, running with exactly the RBAC that
// `make manifests` generates (config/rbac/speaker): it must find its node,
// read a password Secret in bgplb-system, announce, and leave its routers
// as documented in cmd/bgplb/speaker_setup.go: SIGTERM keeps the routes
// (graceful restart, no Cease), SIGINT withdraws them (Cease).
var _ = Describe("The bgplb speaker binary", Ordered, func() {
	var (
		bin, kubeconfig string
		rtrE            *bgptest.Router
	)

	BeforeAll(func() {
		dir := GinkgoT().TempDir()
		var err error
		bin, err = framework.Binary(dir)
		Expect(err).NotTo(HaveOccurred())

		By("granting the generated speaker roles to a user")
		kubeconfig, err = env.UserKubeconfig(ctx, dir, "bgplb-speaker-binary", "config/rbac/speaker/role.yaml")
		Expect(err).NotTo(HaveOccurred())

		By("a router that wants a TCP-MD5 password from a Secret")
		rtrE, err = bgptest.Start(bgptest.Options{ASN: 65005, Address: mustAddr("127.0.0.6")})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(rtrE.Stop)
		Expect(rtrE.AddNeighbor(bgptest.Neighbor{Address: speakerV4, ASN: localASN, Password: "binary-md5"})).To(Succeed())
		create(&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.InstallNamespace, Name: "rtr-e-auth"},
			Data:       map[string][]byte{"password": []byte("binary-md5")},
		})
		p := bgpPeer("rtr-e", rtrE, speakerV4)
		p.Spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: "rtr-e-auth"}
		create(p)
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}, Peers: []string{"rtr-a", "rtr-e"}})
		announcedService("203.0.113.150", pool)

		By("handing the node over from the in-process speaker to the binary")
		Eventually(prefixes(rtrE)).Should(ContainElement("203.0.113.150/32"))
		run.stop(false)
		run = nil
		DeferCleanup(func() { run = startSpeaker() })
	})

	// startBinary runs `bgplb speaker` for node-a.
	startBinary := func() (*exec.Cmd, chan error) {
		cmd := exec.Command(bin, "speaker", "--kubeconfig", kubeconfig, "--node-name", nodeName,
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--drain-time", drainTime.String())
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		Expect(cmd.Start()).To(Succeed())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		DeferCleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				<-done //nolint:errcheck // the exit error of a killed process says only that
			}
			AddReportEntry("speaker log", logs.String())
		})
		return cmd, done
	}

	It("announces with its generated RBAC, and on SIGTERM leaves the routes with the routers", func() {
		cmd, done := startBinary()
		Eventually(func() bool { return sessionEstablished(rtrE) }).Should(BeTrue(), "password read from the Secret")
		Eventually(route(rtrA, "203.0.113.150/32")).Should(MatchFields(IgnoreExtras, Fields{"Stale": BeFalse(), "NextHop": Equal(speakerV4)}))
		Eventually(prefixes(rtrE)).Should(ContainElement("203.0.113.150/32"))
		Eventually(condition("Ready")).Should(MatchFields(IgnoreExtras, Fields{"Status": Equal(metav1.ConditionTrue)}))
		before, _ := rtrA.Session(speakerV4)

		Expect(cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		Eventually(done).WithTimeout(time.Minute).Should(Receive(BeNil()), "exits cleanly")
		Eventually(func() bool { return sessionEstablished(rtrA) }).Should(BeFalse())
		after, _ := rtrA.Session(speakerV4)
		Expect(after.ReceivedNotifications).To(Equal(before.ReceivedNotifications), "no Cease")
		Expect(route(rtrA, "203.0.113.150/32")()).To(MatchFields(IgnoreExtras, Fields{"Stale": BeTrue()}))
		Eventually(condition("Ready")).Should(MatchFields(IgnoreExtras, Fields{"Reason": Equal("SpeakerStopped")}))
	})

	It("comes back without the route ever being withdrawn, and on SIGINT withdraws it", func() {
		cmd, done := startBinary()
		Eventually(route(rtrA, "203.0.113.150/32")).Should(MatchFields(IgnoreExtras, Fields{"Stale": BeFalse()}))
		for _, u := range rtrA.UpdatesFor(mustPrefix("203.0.113.150/32")) {
			Expect(u.Withdraw).To(BeFalse())
		}
		Eventually(func() bool { return sessionEstablished(rtrA) }).Should(BeTrue())
		before, _ := rtrA.Session(speakerV4)

		Expect(cmd.Process.Signal(syscall.SIGINT)).To(Succeed())
		Eventually(done).WithTimeout(time.Minute).Should(Receive(BeNil()), "exits cleanly")
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("203.0.113.150/32"))
		after, _ := rtrA.Session(speakerV4)
		Expect(after.ReceivedNotifications).To(BeNumerically(">", before.ReceivedNotifications), "a Cease")
	})
})
