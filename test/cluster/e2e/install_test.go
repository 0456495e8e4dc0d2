package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/test/cluster"
	"github.com/bgplb/bgplb/test/lab"
)

// procsNamed returns the PIDs whose command line starts with argv0 and arg.
func procsNamed(argv0, arg string) []int {
	return cluster.Processes(func(args []string) bool { return len(args) > 1 && args[0] == argv0 && args[1] == arg })
}

// status returns the named fields of /proc/PID/status.
func status(pid int) map[string]string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	Expect(err).NotTo(HaveOccurred())
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// rootReadOnly reports whether the process's / is mounted read-only.
func rootReadOnly(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	Expect(err).NotTo(HaveOccurred())
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 5 && f[4] == "/" {
			return strings.HasPrefix(f[5], "ro")
		}
	}
	return false
}

func privilegeSpecs() {
	It("runs the speaker with only NET_BIND_SERVICE and NET_RAW (L2 mode) and a read-only root, the controller as non-root with no capability", func() {
		speakers := procsNamed("/bgplb", "speaker")
		Expect(speakers).To(HaveLen(len(cl.Nodes)), "one speaker container process per node")
		for _, pid := range speakers {
			st := status(pid)
			Expect(st["CapEff"]).To(Equal("0000000000002400"), "speaker %d effective capabilities (NET_BIND_SERVICE, NET_RAW only)", pid)
			Expect(st["CapBnd"]).To(Equal("0000000000002400"), "speaker %d bounding set", pid)
			Expect(st["NoNewPrivs"]).To(Equal("1"))
			Expect(rootReadOnly(pid)).To(BeTrue(), "speaker %d root filesystem read-only", pid)
		}
		controllers := procsNamed("/bgplb", "controller")
		Expect(controllers).To(HaveLen(2))
		for _, pid := range controllers {
			st := status(pid)
			Expect(strings.Fields(st["Uid"])[0]).To(Equal("65532"))
			Expect(st["CapEff"]).To(Equal("0000000000000000"))
			Expect(st["NoNewPrivs"]).To(Equal("1"))
			Expect(rootReadOnly(pid)).To(BeTrue(), "controller %d root filesystem read-only", pid)
		}
	})

	It("has a controller that PodSecurity restricted admits (only the hostNetwork speaker needs privileged)", func(ctx SpecContext) {
		out, err := cl.Kubectl(ctx, "label", "--dry-run=server", "--overwrite", "namespace", "bgplb-system",
			"pod-security.kubernetes.io/enforce=restricted")
		Expect(err).NotTo(HaveOccurred())
		fmt.Fprintf(GinkgoWriter, "restricted dry run:\n%s", out)
		Expect(out).To(ContainSubstring("bgplb-speaker"), "the speaker needs more than restricted (host network)")
		Expect(out).NotTo(ContainSubstring("bgplb-controller"), "the controller must pass restricted")
	})
}

func uninstallSpecs() {
	It("removes the namespace, workloads and RBAC, and the routers withdraw every address", func(ctx SpecContext) {
		t0 := time.Now()
		_, err := cl.Kubectl(ctx, "delete", "-k", cluster.Overlay(), "--wait=false")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			for _, r := range cl.Lab.Routers() {
				for _, p := range []netip.Prefix{lab.Pool4, lab.Pool6} {
					out, err := r.Exec(ctx, "ip", "route", "show", "root", p.String())
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(strings.TrimSpace(out)).To(BeEmpty(), "%s still routes under %s", r.Name, p)
				}
			}
		}, 3*time.Minute).Should(Succeed())
		fmt.Fprintf(GinkgoWriter, "routers withdrew every address %s after kubectl delete -k\n", time.Since(t0).Round(100*time.Millisecond))
		Eventually(func(g Gomega) {
			_, err := cs.CoreV1().Namespaces().Get(ctx, "bgplb-system", metav1.GetOptions{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "namespace bgplb-system gone")
			roles, err := cl.Kubectl(ctx, "get", "clusterroles,clusterrolebindings", "-o", "name")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(roles).NotTo(ContainSubstring("bgplb"))
		}).Should(Succeed())
	}, SpecTimeout(6*time.Minute))

	// kubectl delete -k deletes the controller together with the CRDs, so
	// nothing may carry a finalizer only the controller removes (IPPools
	// carry none: the IPAllocations are the locks).
	It("removes the CRDs too (no object left with a finalizer only the deleted controller removes)", func(ctx SpecContext) {
		t0 := time.Now()
		Eventually(func(g Gomega) {
			crds, err := cl.Kubectl(ctx, "get", "crd", "-o", "name")
			g.Expect(err).NotTo(HaveOccurred())
			if strings.Contains(crds, "bgplb.io") {
				stuck, _ := cl.Kubectl(ctx, "get", "ippools,ipallocations", "-o", "custom-columns=KIND:.kind,NAME:.metadata.name,FINALIZERS:.metadata.finalizers")
				g.Expect(crds).NotTo(ContainSubstring("bgplb.io"), "CRDs still there; objects left:\n%s", stuck)
			}
		}, time.Minute).Should(Succeed())
		fmt.Fprintf(GinkgoWriter, "uninstalled %s after kubectl delete -k\n", time.Since(t0).Round(100*time.Millisecond))
	}, SpecTimeout(6*time.Minute))
}
