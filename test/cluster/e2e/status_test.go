package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

// nodeStatuses reads every BGPNodeStatus as kubectl shows it, by node.
func nodeStatuses(ctx context.Context) (map[string]v1alpha1.BGPNodeStatus, error) {
	out, err := cl.Kubectl(ctx, "get", "bgpnodestatuses", "-o", "json")
	if err != nil {
		return nil, err
	}
	var list v1alpha1.BGPNodeStatusList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("decode bgpnodestatuses: %w", err)
	}
	m := map[string]v1alpha1.BGPNodeStatus{}
	for _, s := range list.Items {
		m[s.Name] = s
	}
	return m, nil
}

// statusSpecs: what the speakers report (BGPNodeStatus) and what the
// controller sums up (kubectl get bgppeers) agree with the routers.
func statusSpecs() {
	It("shows the sessions in BGPNodeStatus and kubectl get bgppeers as the routers see them", func(ctx SpecContext) {
		hello(ctx)
		Eventually(func(g Gomega) {
			sts, err := nodeStatuses(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			for _, n := range cl.Nodes {
				st, ok := sts[n.Name]
				g.Expect(ok).To(BeTrue(), "BGPNodeStatus %s", n.Name)
				g.Expect(st.OwnerReferences).To(ContainElement(And(HaveField("Kind", "Node"), HaveField("Name", n.Name))),
					"BGPNodeStatus %s is owned by its Node", n.Name)
				g.Expect(st.Status.Sessions).To(HaveLen(len(lab.SamplePeers)), "%s: one session per BGPPeer", n.Name)
				g.Expect(st.Status.EstablishedSessions).To(BeEquivalentTo(len(lab.SamplePeers)))
				g.Expect(meta.IsStatusConditionTrue(st.Status.Conditions, "Ready")).To(BeTrue(), "%s: Ready: %+v", n.Name, st.Status.Conditions)
				for _, s := range st.Status.Sessions {
					want, ok := lab.SamplePeers[s.Peer]
					g.Expect(ok).To(BeTrue(), "%s: unexpected session %+v", n.Name, s)
					g.Expect(s.Address).To(Equal(want.Address.String()))
					r := cl.Lab.Router(want.Router)
					local := nextHop(n.Name, r.Name, want.Address).String()
					nbrs, err := labcluster.Neighbors(r)
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(nbrs).To(HaveKey(local), "%s has no session with %s", r.Name, local)
					g.Expect(string(s.State)).To(Equal(nbrs[local].State), "%s %s: node and router disagree on the state", n.Name, s.Peer)
					g.Expect(int(s.PrefixesSent)).To(Equal(nbrs[local].PfxRcd), "%s %s: prefixes sent vs received by %s", n.Name, s.Peer, r.Name)
					g.Expect(s.PrefixesSent).To(BeNumerically(">=", 1), "%s %s: the hello Service is announced", n.Name, s.Peer)
					bfd, err := labcluster.BFDPeers(r)
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(bfd).To(HaveKeyWithValue(local, HaveField("Status", "up")), "%s: BFD with %s", r.Name, n.Name)
					g.Expect(strings.ToLower(s.BFDState)).To(Equal("up"), "%s %s: BFD state vs %s", n.Name, s.Peer, r.Name)
					g.Expect(s.Since).NotTo(BeNil())
				}
			}
		}).Should(Succeed())

		By("kubectl get bgppeers")
		Eventually(func(g Gomega) {
			out, err := cl.Kubectl(ctx, "get", "bgppeers")
			g.Expect(err).NotTo(HaveOccurred())
			est := lab.Column(out, "ESTABLISHED")
			for name := range lab.SamplePeers {
				g.Expect(est).To(HaveKeyWithValue(name, fmt.Sprintf("%d/%d", len(cl.Nodes), len(cl.Nodes))), "kubectl get bgppeers:\n%s", out)
			}
		}).Should(Succeed())

		By("a peer that never answers")
		// An unused address on r1's LAN: the nodes' SYNs get no answer.
		_, err := cl.ApplyYAML(ctx, `apiVersion: bgplb.io/v1alpha1
kind: BGPPeer
metadata: {name: e2e-nowhere}
spec:
  address: 192.0.2.60
  asn: 64599
  localASN: 64512
  connectRetryTime: 1s
`)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { kubectlOK(ctx, "delete", "bgppeer", "e2e-nowhere") })
		t := time.Now()
		Eventually(func(g Gomega) {
			sts, err := nodeStatuses(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			for _, n := range cl.Nodes {
				st := sts[n.Name]
				sessions := map[string]v1alpha1.BGPSessionStatus{}
				for _, s := range st.Status.Sessions {
					sessions[s.Peer] = s
				}
				g.Expect(sessions).To(HaveKey("e2e-nowhere"), "%s: a session for the new peer", n.Name)
				g.Expect(sessions["e2e-nowhere"].State).NotTo(Equal(v1alpha1.SessionEstablished))
				g.Expect(st.Status.EstablishedSessions).To(BeEquivalentTo(len(lab.SamplePeers)))
				g.Expect(meta.IsStatusConditionFalse(st.Status.Conditions, "Ready")).To(BeTrue(),
					"%s: Ready is False while a session is down: %+v", n.Name, st.Status.Conditions)
			}
			out, err := cl.Kubectl(ctx, "get", "bgppeers")
			g.Expect(err).NotTo(HaveOccurred())
			est := lab.Column(out, "ESTABLISHED")
			g.Expect(est).To(HaveKeyWithValue("e2e-nowhere", fmt.Sprintf("0/%d", len(cl.Nodes))), "kubectl get bgppeers:\n%s", out)
			for name := range lab.SamplePeers {
				g.Expect(est).To(HaveKeyWithValue(name, fmt.Sprintf("%d/%d", len(cl.Nodes), len(cl.Nodes))), "kubectl get bgppeers:\n%s", out)
			}
		}).Should(Succeed())
		out := kubectlOK(ctx, "get", "bgppeers")
		fmt.Fprintf(GinkgoWriter, "status shows the unreachable peer %s after it was created:\n%s", time.Since(t).Round(time.Millisecond), out)
	}, SpecTimeout(4*time.Minute))
}
