package e2e

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

var _ = Describe("Status", bgpLabel, func() {
	BeforeEach(expectSessionsUp)

	It("k) BGPNodeStatus and kubectl get bgppeers show the sessions as the routers see them", func() {
		_, addrs := createService(labcluster.ServiceOptions{Name: "status", Families: labcluster.DualStack}, 2)
		for _, a := range addrs {
			expectAnnounced(a, nodes...)
		}

		Eventually(func(g Gomega) {
			for _, n := range nodes {
				st := &v1alpha1.BGPNodeStatus{}
				g.Expect(k8s.Get(ctx, types.NamespacedName{Name: n}, st)).To(Succeed(), "BGPNodeStatus %s", n)
				g.Expect(st.OwnerReferences).To(ContainElement(And(HaveField("Kind", "Node"), HaveField("Name", n))),
					"BGPNodeStatus %s is owned by its Node", n)
				g.Expect(st.Status.Sessions).To(HaveLen(len(lab.SamplePeers)), "%s: one session per BGPPeer", n)
				g.Expect(st.Status.EstablishedSessions).To(BeEquivalentTo(len(lab.SamplePeers)))
				g.Expect(meta.IsStatusConditionTrue(st.Status.Conditions, "Ready")).To(BeTrue(), "%s: Ready: %+v", n, st.Status.Conditions)
				for _, s := range st.Status.Sessions {
					want, ok := lab.SamplePeers[s.Peer]
					g.Expect(ok).To(BeTrue(), "%s: unexpected session %+v", n, s)
					g.Expect(s.Address).To(Equal(want.Address.String()))
					r := cluster.Lab.Router(want.Router)
					local := cluster.NextHop(n, r.Name, want.Address).String()
					nbrs, err := labcluster.Neighbors(r)
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(nbrs).To(HaveKey(local), "%s has no session with %s", r.Name, local)
					g.Expect(string(s.State)).To(Equal(nbrs[local].State), "%s %s: node and router disagree on the state", n, s.Peer)
					g.Expect(int(s.PrefixesSent)).To(Equal(nbrs[local].PfxRcd), "%s %s: prefixes sent vs received by %s", n, s.Peer, r.Name)
					bfd, err := labcluster.BFDPeers(r)
					g.Expect(err).NotTo(HaveOccurred())
					// BFD up at the router means the node runs it and must say
					// so; a node that runs it must agree with the router.
					rb, ok := bfd[local]
					switch {
					case !ok:
						g.Expect(s.BFDState).To(BeEmpty(), "%s %s: BFD state, but %s runs no BFD with %s", n, s.Peer, r.Name, local)
					case rb.Status == "up" || s.BFDState != "":
						g.Expect(strings.ToLower(s.BFDState)).To(Equal(rb.Status), "%s %s: BFD state vs %s", n, s.Peer, r.Name)
					}
					g.Expect(s.Since).NotTo(BeNil())
				}
			}
		}).Should(Succeed())

		By("kubectl get bgppeers")
		Eventually(func(g Gomega) {
			out, err := cluster.Kubectl(ctx, "get", "bgppeers")
			g.Expect(err).NotTo(HaveOccurred())
			est := lab.Column(out, "ESTABLISHED")
			for name := range lab.SamplePeers {
				g.Expect(est).To(HaveKeyWithValue(name, "3/3"), "kubectl get bgppeers:\n%s", out)
			}
		}).Should(Succeed())

		By("a peer that never answers")
		// An unused address on r1's LAN: the nodes' SYNs get no answer.
		create(&v1alpha1.BGPPeer{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-nowhere"},
			Spec: v1alpha1.BGPPeerSpec{
				Address: "192.0.2.60", ASN: 64599, LocalASN: int64(lab.NodeASN),
				ConnectRetryTime: &metav1.Duration{Duration: time.Second},
				NodeSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/os": "linux"}},
			},
		})
		Eventually(func(g Gomega) {
			for _, n := range nodes {
				st := &v1alpha1.BGPNodeStatus{}
				g.Expect(k8s.Get(ctx, types.NamespacedName{Name: n}, st)).To(Succeed())
				sessions := map[string]v1alpha1.BGPSessionStatus{}
				for _, s := range st.Status.Sessions {
					sessions[s.Peer] = s
				}
				g.Expect(sessions).To(HaveKey("e2e-nowhere"))
				g.Expect(sessions["e2e-nowhere"].State).NotTo(Equal(v1alpha1.SessionEstablished))
				g.Expect(st.Status.EstablishedSessions).To(BeEquivalentTo(len(lab.SamplePeers)))
				g.Expect(meta.IsStatusConditionFalse(st.Status.Conditions, "Ready")).To(BeTrue(),
					"%s: Ready is False while a session is down: %+v", n, st.Status.Conditions)
			}
			out, err := cluster.Kubectl(ctx, "get", "bgppeers")
			g.Expect(err).NotTo(HaveOccurred())
			est := lab.Column(out, "ESTABLISHED")
			g.Expect(est).To(HaveKeyWithValue("e2e-nowhere", "0/3"), "kubectl get bgppeers:\n%s", out)
			for name := range lab.SamplePeers {
				g.Expect(est).To(HaveKeyWithValue(name, "3/3"), "kubectl get bgppeers:\n%s", out)
			}
		}).Should(Succeed())
	})
})
