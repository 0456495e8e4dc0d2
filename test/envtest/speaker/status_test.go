package speaker_test

import (
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/bgptest"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

var _ = Describe("Status", func() {
	It("reports the node's sessions in a BGPNodeStatus owned by the Node", func() {
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}})
		announcedService("2001:db8:2::1", pool)
		announcedService("2001:db8:2::2", pool)
		Eventually(prefixes(rtr6)).Should(ContainElements("2001:db8:2::1/128", "2001:db8:2::2/128"))

		Eventually(nodeStatus).ShouldNot(BeNil())
		st := nodeStatus()
		Expect(st.OwnerReferences).To(ConsistOf(MatchFields(IgnoreExtras, Fields{
			"APIVersion": Equal("v1"), "Kind": Equal("Node"), "Name": Equal(nodeName), "UID": Equal(node.UID),
		})), "garbage-collected with its Node")

		for _, p := range []struct{ name, addr string }{{"rtr-a", "127.0.0.2"}, {"rtr-b", "127.0.0.3"}, {"rtr-6", "::1"}} {
			Eventually(session(p.name)).Should(MatchFields(IgnoreExtras, Fields{
				"Address": Equal(p.addr),
				"State":   Equal(v1alpha1.SessionEstablished),
				"Since":   Not(BeNil()),
			}), "session with %s", p.name)
		}
		// prefixesSent is what the router actually holds from the node.
		Eventually(func() int32 { return session("rtr-6")().PrefixesSent }).
			Should(BeEquivalentTo(len(prefixes(rtr6)())))
		Eventually(func() int32 { return session("rtr-a")().PrefixesSent }).
			Should(BeEquivalentTo(len(prefixes(rtrA)())))
		Eventually(condition("Ready")).Should(MatchFields(IgnoreExtras, Fields{
			"Status": Equal(metav1.ConditionTrue), "Reason": Equal("Established"),
		}))
		Eventually(func() int32 { return nodeStatus().Status.EstablishedSessions }).Should(BeEquivalentTo(3))
		Eventually(func() int32 { return nodeStatus().Status.AnnouncedPrefixes }).Should(BeNumerically(">=", 2))

		By("a session going down shows at once")
		Expect(rtrB.RemoveNeighbor(speakerV4)).To(Succeed())
		DeferCleanup(func() {
			Expect(rtrB.AddNeighbor(bgptest.Neighbor{Address: speakerV4, ASN: localASN})).To(Succeed())
			Eventually(func() bool { return sessionEstablished(rtrB) }).Should(BeTrue())
		})
		Eventually(session("rtr-b")).Should(MatchFields(IgnoreExtras, Fields{
			"State": Not(Equal(v1alpha1.SessionEstablished)),
		}))
		Eventually(condition("Ready")).Should(MatchFields(IgnoreExtras, Fields{
			"Status": Equal(metav1.ConditionFalse), "Reason": Equal("NotEstablished"),
			"Message": ContainSubstring("rtr-b"),
		}))
		Eventually(eventReasons("BGPPeer", "rtr-b")).Should(ContainElement("SessionDown"))
	})

	It("summarises every node's session in the BGPPeer's status", func() {
		Eventually(peerStatus("rtr-a")).Should(MatchFields(IgnoreExtras, Fields{
			"Nodes": BeEquivalentTo(1), "EstablishedNodes": BeEquivalentTo(1), "Sessions": Equal("1/1"),
		}))
		Eventually(peerCondition("rtr-a", "Ready")).Should(MatchFields(IgnoreExtras, Fields{"Status": Equal(metav1.ConditionTrue)}))

		By("another node reporting its session as down")
		other := &v1alpha1.BGPNodeStatus{ObjectMeta: metav1.ObjectMeta{Name: "node-z"}}
		create(other)
		other.Status.Sessions = []v1alpha1.BGPSessionStatus{{Peer: "rtr-a", Address: "127.0.0.2", State: v1alpha1.SessionActive}}
		Expect(k8s.Status().Update(ctx, other)).To(Succeed())
		Eventually(peerStatus("rtr-a")).Should(MatchFields(IgnoreExtras, Fields{
			"Nodes": BeEquivalentTo(2), "EstablishedNodes": BeEquivalentTo(1), "Sessions": Equal("1/2"),
		}))
		Eventually(peerCondition("rtr-a", "Ready")).Should(MatchFields(IgnoreExtras, Fields{
			"Status": Equal(metav1.ConditionFalse), "Reason": Equal("NotEstablished"),
		}))

		By("and established")
		other.Status.Sessions[0].State = v1alpha1.SessionEstablished
		Expect(k8s.Status().Update(ctx, other)).To(Succeed())
		Eventually(peerStatus("rtr-a")).Should(MatchFields(IgnoreExtras, Fields{"Sessions": Equal("2/2")}))

		By("and gone with its node")
		Expect(k8s.Delete(ctx, other)).To(Succeed())
		Eventually(peerStatus("rtr-a")).Should(MatchFields(IgnoreExtras, Fields{"Sessions": Equal("1/1")}))
	})

	It("exports session, prefix, update and reconcile metrics", func() {
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}, Peers: []string{"rtr-a"}})
		announcedService("198.51.100.200", pool)
		Eventually(prefixes(rtrA)).Should(ContainElement("198.51.100.200/32"))

		Eventually(func() float64 { return metricValue("bgplb_speaker_session_up", "peer", "rtr-a") }).Should(Equal(1.0))
		Eventually(func() float64 { return metricValue("bgplb_speaker_announced_prefixes", "peer", "rtr-a") }).
			Should(BeEquivalentTo(len(prefixes(rtrA)())))
		Expect(metricValue("bgplb_speaker_apply_total", "result", "success")).To(BeNumerically(">", 0))
		Expect(metricValue("bgplb_speaker_paths_added_total", "", "")).To(BeNumerically(">", 0))
		Expect(metricValue("bgplb_speaker_reconcile_duration_seconds", "", "")).To(BeNumerically(">", 0))

		removed := metricValue("bgplb_speaker_paths_removed_total", "", "")
		Expect(k8s.Delete(ctx, &v1alpha1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: "198.51.100.200"}})).To(Succeed())
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("198.51.100.200/32"))
		Expect(metricValue("bgplb_speaker_paths_removed_total", "", "")).To(BeNumerically(">", removed))
	})
})

var _ = Describe("Restarting the speaker", Ordered, func() {
	It("with graceful restart: routers keep the routes while it is away, and it resumes the drain", func() {
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}, Peers: []string{"rtr-a"}})
		announcedService("203.0.113.120", pool)
		Eventually(prefixes(rtrA)).Should(ContainElement("203.0.113.120/32"))
		before, _ := rtrA.Session(speakerV4)
		Expect(before.GracefulRestart).To(BeTrue(), "the speaker advertises graceful restart")

		By("stopping it as on SIGTERM: no Cease, the router keeps the route as stale")
		run.stop(true)
		Eventually(func() bool { return sessionEstablished(rtrA) }).Should(BeFalse())
		after, _ := rtrA.Session(speakerV4)
		Expect(after.ReceivedNotifications).To(Equal(before.ReceivedNotifications), "no NOTIFICATION (Cease) sent")
		Expect(route(rtrA, "203.0.113.120/32")()).To(MatchFields(IgnoreExtras, Fields{"Stale": BeTrue()}))
		Eventually(condition("Ready")).Should(MatchFields(IgnoreExtras, Fields{"Reason": Equal("SpeakerStopped")}))

		By("starting it again: the route is refreshed, never withdrawn")
		run = startSpeaker()
		Eventually(func() bool { return sessionEstablished(rtrA) }).Should(BeTrue())
		Eventually(route(rtrA, "203.0.113.120/32")).Should(MatchFields(IgnoreExtras, Fields{
			"Stale": BeFalse(), "NextHop": Equal(speakerV4),
		}))
		for _, u := range rtrA.UpdatesFor(mustPrefix("203.0.113.120/32")) {
			Expect(u.Withdraw).To(BeFalse(), "the route was withdrawn during the restart")
		}
		Eventually(condition("Ready")).Should(MatchFields(IgnoreExtras, Fields{"Status": Equal(metav1.ConditionTrue)}))
	})

	It("without graceful restart (SIGINT): the router withdraws at once", func() {
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}, Peers: []string{"rtr-a"}})
		announcedService("203.0.113.121", pool)
		Eventually(prefixes(rtrA)).Should(ContainElement("203.0.113.121/32"))
		before, _ := rtrA.Session(speakerV4)

		run.stop(false)
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("203.0.113.121/32"))
		after, _ := rtrA.Session(speakerV4)
		Expect(after.ReceivedNotifications).To(BeNumerically(">", before.ReceivedNotifications), "a Cease was sent")

		run = startSpeaker()
		Eventually(prefixes(rtrA)).Should(ContainElement("203.0.113.121/32"))
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

// metricValue reads a counter, gauge or histogram (its sample count) from
// controller-runtime's registry; label "" matches any series (summed).
func metricValue(name, label, value string) float64 {
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label != "" && !hasLabel(m, label, value) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func keyOf(o client.Object) client.ObjectKey { return client.ObjectKeyFromObject(o) }

func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

var _ = Describe("A re-created Node", func() {
	It("gets a new BGPNodeStatus, owned by it, that keeps following the sessions and prefixes", func() {
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}})
		announcedService("2001:db8:5::1", pool)
		Eventually(func() int32 { return session("rtr-6")().PrefixesSent }).Should(BeNumerically(">=", 1))

		By("deleting the Node and registering it again, as a kubelet would")
		old := &corev1.Node{}
		Expect(k8s.Get(ctx, types.NamespacedName{Name: nodeName}, old)).To(Succeed())
		Expect(k8s.Delete(ctx, old.DeepCopy())).To(Succeed())
		back := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: old.Labels}}
		Expect(k8s.Create(ctx, back)).To(Succeed())
		back.Status = old.Status
		Expect(k8s.Status().Update(ctx, back)).To(Succeed())
		node = back
		// envtest runs no garbage collector: remove what it would.
		Expect(client.IgnoreNotFound(k8s.Delete(ctx, &v1alpha1.BGPNodeStatus{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}))).To(Succeed())

		Eventually(func() []metav1.OwnerReference {
			if st := nodeStatus(); st != nil {
				return st.OwnerReferences
			}
			return nil
		}).Should(ConsistOf(HaveField("UID", back.UID)))

		By("a new address shows in the new status")
		announcedService("2001:db8:5::2", pool)
		Eventually(prefixes(rtr6)).Should(ContainElement("2001:db8:5::2/128"))
		Eventually(func() int32 { return session("rtr-6")().PrefixesSent }).Should(BeEquivalentTo(len(prefixes(rtr6)())))
		Eventually(func() int32 { return nodeStatus().Status.AnnouncedPrefixes }).Should(BeEquivalentTo(len(prefixes(rtr6)()) + len(prefixes(rtrA)())))
	})
})
