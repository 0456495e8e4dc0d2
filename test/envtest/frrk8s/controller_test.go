package frrk8s_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

const frrReload = "/usr/lib/frr/frr-reload.py"

// frr-k8s's own controller (built from the pinned module) for node-a,
// without FRR: it reads bgplb's FRRConfiguration and password Secret from
// the API, merges them with another component's, renders FRR's
// configuration file and reports the result in FRRNodeState, exactly as in
// a cluster. Only the reload is a stand-in: a process that ignores the
// SIGHUP frr-k8s sends its reloader.
var _ = Describe("frr-k8s's own controller", Ordered, func() {
	var confFile string

	BeforeAll(func() {
		dir := GinkgoT().TempDir()
		bin, err := framework.FRRK8sController(dir)
		Expect(err).NotTo(HaveOccurred())
		u, err := env.AddUser(envtest.User{Name: "frr-k8s-node-a", Groups: []string{"system:masters"}}, nil)
		Expect(err).NotTo(HaveOccurred())
		kc, err := u.KubeConfig()
		Expect(err).NotTo(HaveOccurred())
		kubeconfig := filepath.Join(dir, "kubeconfig")
		Expect(os.WriteFile(kubeconfig, kc, 0o600)).To(Succeed())

		reloader := exec.Command("sh", "-c", `trap "" HUP; exec sleep 3600`)
		Expect(reloader.Start()).To(Succeed())
		DeferCleanup(func() { _ = reloader.Process.Kill(); _ = reloader.Wait() })
		pidFile := filepath.Join(dir, "reloader.pid")
		Expect(os.WriteFile(pidFile, []byte(strconv.Itoa(reloader.Process.Pid)), 0o644)).To(Succeed())

		confFile = filepath.Join(dir, "frr.conf")
		ctl := exec.Command(bin, "--node-name", "node-a", "--namespace", frrNS, "--metrics-bind-address", "0")
		ctl.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "FRR_CONFIG_FILE="+confFile, "FRR_RELOADER_PID_FILE="+pidFile)
		ctl.Stdout, ctl.Stderr = GinkgoWriter, GinkgoWriter
		Expect(ctl.Start()).To(Succeed())
		DeferCleanup(func() {
			_ = ctl.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = ctl.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = ctl.Process.Kill()
				<-done
			}
		})
	})

	conf := func() string { b, _ := os.ReadFile(confFile); return string(b) }
	conversion := func() string {
		var st frrv1beta1.FRRNodeState
		_ = k8s.Get(ctx, types.NamespacedName{Name: "node-a"}, &st)
		return st.Status.LastConversionResult
	}

	It("renders bgplb's configuration merged with another component's, with the password from the copied Secret", func() {
		advertiseAll()
		create(&frrv1beta1.FRRConfiguration{
			ObjectMeta: metav1.ObjectMeta{Namespace: frrNS, Name: uniq("other")},
			Spec: frrv1beta1.FRRConfigurationSpec{
				NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/hostname": "node-a"}},
				BGP:          frrv1beta1.BGPConfig{Routers: []frrv1beta1.Router{{ASN: localASN, Prefixes: []string{"198.51.100.0/24"}}}},
			},
		})
		announced("203.0.113.60", false, "node-a")
		Eventually(conf).WithTimeout(90 * time.Second).Should(And(
			ContainSubstring("router bgp 64512"),
			ContainSubstring("bgp router-id 192.0.2.1"),
			ContainSubstring("neighbor 127.0.0.2 remote-as 65001"),
			ContainSubstring("neighbor 127.0.0.2 port 1790"),
			ContainSubstring("neighbor 127.0.0.2 password s3cret"),
			ContainSubstring("neighbor 127.0.0.2 bfd profile bgplb-rtr-a"),
			ContainSubstring("neighbor 127.0.0.2 graceful-restart"),
			ContainSubstring("neighbor 127.0.0.3 remote-as 64512"),
			ContainSubstring("neighbor ::1 remote-as 65002"),
			ContainSubstring("network 203.0.113.60/32"),
			ContainSubstring("network 198.51.100.0/24"),
			ContainSubstring("set community 65000:100 additive"),
			ContainSubstring("set large-community 65000:1:2 additive"),
			ContainSubstring("set local-preference 200"),
		))
		Eventually(conversion).Should(Equal("success"))
		Eventually(frrCondition("node-a")).Should(HaveField("Status", metav1.ConditionTrue))
	})

	It("renders a file the installed FRR accepts (frr-reload.py --test)", func() {
		if _, err := os.Stat(frrReload); err != nil {
			Skip("needs " + frrReload + " (Debian: frr-pythontools)")
		}
		Eventually(conf).Should(ContainSubstring("router bgp"))
		running := filepath.Join(filepath.Dir(confFile), "running.conf")
		Expect(os.WriteFile(running, []byte("frr version 8.4\n!\nend\n"), 0o644)).To(Succeed())
		out, err := exec.Command("python3", frrReload, "--test", "--input", running, confFile).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)
	})

	It("reports a conflict with another component, which bgplb turns into the sessions' last error and an event", func() {
		advertiseAll()
		announced("203.0.113.61", false, "node-a")
		Eventually(conf).WithTimeout(90 * time.Second).Should(ContainSubstring("network 203.0.113.61/32"))
		conflicting := &frrv1beta1.FRRConfiguration{
			ObjectMeta: metav1.ObjectMeta{Namespace: frrNS, Name: uniq("conflict")},
			Spec: frrv1beta1.FRRConfigurationSpec{
				NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/hostname": "node-a"}},
				BGP:          frrv1beta1.BGPConfig{Routers: []frrv1beta1.Router{{ASN: 65123}}},
			},
		}
		create(conflicting)
		Eventually(conversion).Should(ContainSubstring("different asns"))
		Eventually(eventReasons("BGPNodeStatus", "node-a")).Should(ContainElement("FRRK8sConfigurationFailed"))
		Eventually(func() []v1alpha1.BGPSessionStatus { return nodeSessions("node-a")() }).Should(
			ContainElement(And(HaveField("Peer", "rtr-a"), HaveField("LastError", ContainSubstring("different asns")))))

		By("the other component fixes its configuration")
		Expect(k8s.Delete(ctx, conflicting)).To(Succeed())
		Eventually(conversion).Should(Equal("success"))
		Eventually(nodeSessions("node-a")).ShouldNot(ContainElement(HaveField("LastError", ContainSubstring("different asns"))))
	})
})
