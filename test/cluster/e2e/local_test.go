package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/test/cluster"
)

// localSpecs: a Service with externalTrafficPolicy Local is announced only
// by the nodes that run a ready pod of it, and the routers' next hops
// follow the pods as the scheduler moves them.
func localSpecs() {
	const ns, name, sel = "local", "local", "app=local"

	// expectFollows waits until the pods run ready on exactly nodes, then
	// until both routers route both addresses over exactly those nodes,
	// and checks that the client is answered only by pods on them.
	expectFollows := func(ctx context.Context, addrs []netip.Addr, nodes ...string) {
		GinkgoHelper()
		t := time.Now()
		Eventually(func() ([]string, error) { return readyPodNodes(ctx, ns, sel) }).Should(Equal(nodes), "nodes with a ready pod")
		Expect(cl.WaitEndpoints(ctx, ns, name, len(nodes), time.Minute)).To(Succeed())
		pods := time.Since(t)
		for _, a := range addrs {
			expectRouted(a, nodes...)
		}
		fmt.Fprintf(GinkgoWriter, "pods ready on %v after %s; both routers route both addresses over exactly them %s later\n",
			nodes, pods.Round(time.Millisecond), (time.Since(t) - pods).Round(time.Millisecond))
		Consistently(func(g Gomega) {
			for _, a := range addrs {
				for _, r := range cl.Lab.Routers() {
					v, err := viewOf(r, a)
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(v.BGP).To(Equal(nodes), "%s: only nodes with a ready local pod announce %s", r.Name, a)
				}
			}
		}, time.Second, 100*time.Millisecond).Should(Succeed())
		Expect(cl.WaitProxied(ctx, ns, name, time.Minute)).To(Succeed())
		for _, a := range addrs {
			counts := answeredBy(ctx, ns, sel, a, 20)
			fmt.Fprintf(GinkgoWriter, "%s: 20 requests answered on %v\n", a, counts)
			for n := range counts {
				Expect(nodes).To(ContainElement(n), "%s answered on %s, which runs no pod of it (externalTrafficPolicy Local)", a, n)
			}
		}
	}

	It("is announced only by nodes with a ready local pod, and the next hops follow the pods when they move", func(ctx SpecContext) {
		_, err := cl.ApplyYAML(ctx, cluster.BackendManifestWith(ns, name, cluster.Backend{Replicas: 2, Local: true, Nodes: []string{"n1", "n2"}}))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			_, _ = cl.Kubectl(ctx, "uncordon", "n3")
			Expect(cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})).To(Succeed())
		})
		addrs, err := cl.ServiceAddresses(ctx, ns, name, 2, time.Minute)
		Expect(err).NotTo(HaveOccurred())

		By("two pods, on n1 and n2: n3 does not announce")
		expectFollows(ctx, addrs, "n1", "n2")

		By("changing the pods' node affinity to n3: the Deployment rolls them onto n3")
		kubectlOK(ctx, "-n", ns, "patch", "deployment", name, "--type=json", "-p",
			`[{"op":"replace","path":"/spec/template/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchExpressions/0/values","value":["n3"]}]`)
		expectFollows(ctx, addrs, "n3")

		By("cordoning n3 and deleting a pod: its replacement cannot be scheduled, n3 keeps announcing for the other")
		kubectlOK(ctx, "cordon", "n3")
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		Expect(err).NotTo(HaveOccurred())
		Expect(pods.Items).To(HaveLen(2))
		kubectlOK(ctx, "-n", ns, "delete", "pod", pods.Items[0].Name)
		expectFollows(ctx, addrs, "n3")

		By("deleting the last pod on n3: no node has a local endpoint, both routers withdraw")
		kubectlOK(ctx, "-n", ns, "delete", "pod", pods.Items[1].Name)
		Eventually(func() ([]string, error) { return readyPodNodes(ctx, ns, sel) }).Should(BeEmpty())
		t := time.Now()
		for _, a := range addrs {
			expectWithdrawn(a)
		}
		fmt.Fprintf(GinkgoWriter, "withdrawn by both routers %s after the last pod went\n", time.Since(t).Round(time.Millisecond))

		By("uncordoning n3: the pending pods start there and n3 announces again")
		kubectlOK(ctx, "uncordon", "n3")
		expectFollows(ctx, addrs, "n3")
	}, SpecTimeout(6*time.Minute))
}
