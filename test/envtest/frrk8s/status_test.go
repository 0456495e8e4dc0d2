package frrk8s_test

import (
	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

// sessionState writes a BGPSessionState as frr-k8s's status exporter does
// (frr-tools/status): generated name, node/peer/vrf labels, the state in
// status.
func sessionState(node, peer, bgpState, bfd string) *frrv1beta1.BGPSessionState {
	GinkgoHelper()
	s := &frrv1beta1.BGPSessionState{ObjectMeta: metav1.ObjectMeta{
		Namespace: frrNS, GenerateName: node + "-",
		Labels: map[string]string{"frrk8s.metallb.io/node": node, "frrk8s.metallb.io/peer": peer, "frrk8s.metallb.io/vrf": ""},
	}}
	create(s)
	s.Status = frrv1beta1.BGPSessionStateStatus{Node: node, Peer: peer, VRF: "", BGPStatus: bgpState, BFDStatus: bfd}
	Expect(k8s.Status().Update(ctx, s)).To(Succeed())
	return s
}

func nodeSessions(node string) func() []v1alpha1.BGPSessionStatus {
	return func() []v1alpha1.BGPSessionStatus {
		var st v1alpha1.BGPNodeStatus
		if err := k8s.Get(ctx, types.NamespacedName{Name: node}, &st); err != nil {
			return nil
		}
		return st.Status.Sessions
	}
}

func session(peer string, state v1alpha1.SessionState) OmegaMatcher {
	return And(HaveField("Peer", peer), HaveField("State", state))
}

var _ = Describe("Status with the frr-k8s backend", func() {
	BeforeEach(advertiseAll)

	It("reports in BGPNodeStatus and the BGPPeer summary what frr-k8s's BGPSessionStates say", func() {
		announced("203.0.113.16", false, "node-a")
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElement("203.0.113.16/32"))

		By("nothing reported yet: Unknown")
		Eventually(nodeSessions("node-a")).Should(ContainElement(session("rtr-a", v1alpha1.SessionUnknown)))

		By("frr-k8s reports rtr-a Established with BFD up, rtr-b Active, the IPv6 session Established")
		a := sessionState("node-a", "127.0.0.2", "Established", "up")
		sessionState("node-a", "127.0.0.3", "Active", "N/A")
		sessionState("node-a", "0000-0000-0000-0000-0000-0000-0000-0001", "Established", "N/A")
		sessionState("node-b", "127.0.0.2", "Established", "up")
		Eventually(nodeSessions("node-a")).Should(ContainElements(
			And(session("rtr-a", v1alpha1.SessionEstablished), HaveField("BFDState", "Up"), HaveField("PrefixesSent", BeNumerically(">=", 1))),
			And(session("rtr-b", v1alpha1.SessionActive), HaveField("PrefixesSent", BeZero())),
			session("rtr-6", v1alpha1.SessionEstablished),
		))
		Eventually(func() string {
			var p v1alpha1.BGPPeer
			_ = k8s.Get(ctx, types.NamespacedName{Name: "rtr-a"}, &p)
			return p.Status.Sessions
		}).Should(Equal("2/2"), "kubectl get bgppeers: both nodes Established with rtr-a")

		By("the session goes down")
		a.Status.BGPStatus = "Connect"
		Expect(k8s.Status().Update(ctx, a)).To(Succeed())
		Eventually(nodeSessions("node-a")).Should(ContainElement(session("rtr-a", v1alpha1.SessionConnect)))
		Eventually(func() string {
			var p v1alpha1.BGPPeer
			_ = k8s.Get(ctx, types.NamespacedName{Name: "rtr-a"}, &p)
			return p.Status.Sessions
		}).Should(Equal("1/2"))
	})

	It("turns a conflict frr-k8s reports in FRRNodeState into an event and the sessions' last error", func() {
		announced("203.0.113.17", false, "node-a")
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElement("203.0.113.17/32"))
		sessionState("node-a", "127.0.0.2", "Established", "up")
		st := &frrv1beta1.FRRNodeState{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
		if err := k8s.Create(ctx, st); apierrors.IsAlreadyExists(err) {
			// frr-k8s's own controller made it in the spec that runs it,
			// when that one ran first (random order).
			Expect(k8s.Get(ctx, types.NamespacedName{Name: "node-a"}, st)).To(Succeed())
		} else {
			Expect(err).NotTo(HaveOccurred())
		}
		st.Status = frrv1beta1.FRRNodeStateStatus{LastConversionResult: "different asns (64512 != 65123) specified for same vrf: ", LastReloadResult: "success"}
		Expect(k8s.Status().Update(ctx, st)).To(Succeed())
		Eventually(nodeSessions("node-a")).Should(ContainElement(And(session("rtr-a", v1alpha1.SessionEstablished),
			HaveField("LastError", ContainSubstring("different asns")))))
		Eventually(eventReasons("BGPNodeStatus", "node-a")).Should(ContainElement("FRRK8sConfigurationFailed"))
		Eventually(frrCondition("node-a")).Should(And(HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", "FRRK8sConfigurationFailed"), HaveField("Message", ContainSubstring("different asns"))))

		By("frr-k8s succeeds again")
		st.Status.LastConversionResult = "success"
		Expect(k8s.Status().Update(ctx, st)).To(Succeed())
		Eventually(nodeSessions("node-a")).Should(ContainElement(And(session("rtr-a", v1alpha1.SessionEstablished), HaveField("LastError", BeEmpty()))))
		Eventually(eventReasons("BGPNodeStatus", "node-a")).Should(ContainElement("FRRK8sConfigurationApplied"))
		Eventually(frrCondition("node-a")).Should(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", "FRRK8sConfigurationApplied")))
	})
})

// eventReasons polls the reasons of the events about an object.
func eventReasons(kind, name string) func() []string {
	return func() []string {
		evs, err := framework.EventsAbout(ctx, k8s, "", kind, name)
		if err != nil {
			return nil
		}
		var out []string
		for _, e := range evs {
			out = append(out, e.Reason)
		}
		return out
	}
}

// frrCondition polls the FRRK8sConfigured condition of a node's BGPNodeStatus.
func frrCondition(node string) func() metav1.Condition {
	return func() metav1.Condition {
		var st v1alpha1.BGPNodeStatus
		if err := k8s.Get(ctx, types.NamespacedName{Name: node}, &st); err != nil {
			return metav1.Condition{}
		}
		if c := meta.FindStatusCondition(st.Status.Conditions, "FRRK8sConfigured"); c != nil {
			return *c
		}
		return metav1.Condition{}
	}
}
