package frrk8s_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

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
		user := "bgplb-speaker-frr"
		for _, path := range []string{
			filepath.Join(framework.RepoRoot(), "config", "rbac", "speaker", "role.yaml"),
			filepath.Join(framework.RepoRoot(), "config", "components", "frr-k8s", "rbac.yaml"),
		} {
			for _, o := range readYAML(path) {
				if o.GetKind() != "Role" && o.GetKind() != "ClusterRole" {
					continue // bound to the user below instead of the ServiceAccount
				}
				o.SetName("test-" + o.GetName())
				create(o)
				subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
				ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: o.GetKind(), Name: o.GetName()}
				if o.GetKind() == "ClusterRole" {
					create(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: o.GetName()}, Subjects: subject, RoleRef: ref})
				} else {
					create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: o.GetNamespace(), Name: o.GetName()}, Subjects: subject, RoleRef: ref})
				}
			}
		}
		u, err := env.AddUser(envtest.User{Name: user}, nil)
		Expect(err).NotTo(HaveOccurred())
		kc, err := u.KubeConfig()
		Expect(err).NotTo(HaveOccurred())
		kubeconfig = filepath.Join(dir, "kubeconfig")
		Expect(os.WriteFile(kubeconfig, kc, 0o600)).To(Succeed())
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

// readYAML reads the objects of a multi-document YAML file.
func readYAML(path string) []*unstructured.Unstructured {
	GinkgoHelper()
	f, err := os.Open(path)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	var out []*unstructured.Unstructured
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			Expect(err.Error()).To(Equal("EOF"))
			return out
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}
