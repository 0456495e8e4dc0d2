package frrk8s_test

import (
	"fmt"
	"time"

	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

const ns = "default"

func create(obj client.Object) {
	GinkgoHelper()
	Expect(k8s.Create(ctx, obj)).To(Succeed(), "creating %T %s", obj, obj.GetName())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, obj))).To(Succeed()) })
}

// announced creates a LoadBalancer Service with one ready endpoint on
// epNode, and the IPAllocation the controller would make for addr.
func announced(addr string, etpLocal bool, epNode string) *corev1.Service {
	GinkgoHelper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: uniq("svc")},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			AllocateLoadBalancerNodePorts: ptrTo(false),
		},
	}
	if etpLocal {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	create(s)
	create(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: s.Name + "-abc", Labels: map[string]string{discoveryv1.LabelServiceName: s.Name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"203.0.113.200"}, NodeName: ptrTo(epNode),
			Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true), Serving: ptrTo(true), Terminating: ptrTo(false)},
		}},
	})
	create(&v1alpha1.IPAllocation{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.AllocationName(addr)},
		Spec: v1alpha1.IPAllocationSpec{Address: addr, Pool: "pool-a",
			Services: []v1alpha1.ServiceReference{{Namespace: s.Namespace, Name: s.Name, UID: s.UID}}},
	})
	return s
}

// neighbor returns the neighbor of a config by address (zero if none).
func neighbor(c *frrv1beta1.FRRConfiguration, addr string) frrv1beta1.Neighbor {
	if c == nil || len(c.Spec.BGP.Routers) == 0 {
		return frrv1beta1.Neighbor{}
	}
	for _, n := range c.Spec.BGP.Routers[0].Neighbors {
		if n.Address == addr {
			return n
		}
	}
	return frrv1beta1.Neighbor{}
}

// advertised polls the prefixes a node's config sends to a neighbor.
func advertised(node, addr string) func() []string {
	return func() []string { return neighbor(frrConfig(node)(), addr).ToAdvertise.Allowed.Prefixes }
}

// advertiseAll creates, for the spec, a BGPAdvertisement of every pool
// to every peer with a community, a large community and a local preference.
func advertiseAll() {
	create(&v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: uniq("adv")}, Spec: v1alpha1.BGPAdvertisementSpec{
		Communities:      []v1alpha1.Community{"65000:100"},
		LargeCommunities: []v1alpha1.LargeCommunity{"65000:1:2"},
		LocalPref:        ptrTo(int64(200)),
	}})
}

var _ = Describe("The frr-k8s backend", func() {
	BeforeEach(advertiseAll)

	It("writes one FRRConfiguration per node with its peers, prefixes, communities and local preference, owned by its BGPNodeStatus", func() {
		announced("203.0.113.10", false, "node-b")
		for _, node := range []string{"node-a", "node-b"} {
			Eventually(advertised(node, "127.0.0.2")).Should(ContainElement("203.0.113.10/32"), node)
		}
		c := frrConfig("node-a")()
		Expect(c.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "bgplb"))
		Expect(c.Labels).To(HaveKeyWithValue("bgplb.io/node", "node-a"))
		Expect(c.Spec.NodeSelector.MatchLabels).To(Equal(map[string]string{corev1.LabelHostname: "node-a"}))
		var st v1alpha1.BGPNodeStatus
		Expect(k8s.Get(ctx, types.NamespacedName{Name: "node-a"}, &st)).To(Succeed())
		Expect(c.OwnerReferences).To(ConsistOf(HaveField("UID", st.UID)))

		r := c.Spec.BGP.Routers[0]
		Expect(r.ASN).To(BeEquivalentTo(localASN))
		Expect(r.ID).To(Equal("192.0.2.1"))
		Expect(r.Prefixes).To(ContainElement("203.0.113.10/32"))

		By("rtr-a: eBGP with port, source, timers, multihop, password Secret, BFD, graceful restart")
		a := neighbor(c, "127.0.0.2")
		Expect(a.ASN).To(BeEquivalentTo(65001))
		Expect(*a.Port).To(BeEquivalentTo(1790))
		Expect(a.SourceAddress).To(Equal("127.0.0.1"))
		Expect(a.HoldTime.Duration).To(Equal(9 * time.Second))
		Expect(a.KeepaliveTime.Duration).To(Equal(3 * time.Second))
		Expect(a.EBGPMultiHop).To(BeTrue())
		Expect(a.EnableGracefulRestart).To(BeTrue())
		Expect(a.PasswordSecret).To(Equal(frrv1beta1.SecretReference{Name: "bgplb-node-a-rtr-a", Namespace: frrNS}))
		Expect(a.BFDProfile).To(Equal("bgplb-rtr-a"))
		Expect(c.Spec.BGP.BFDProfiles).To(ContainElement(And(HaveField("Name", "bgplb-rtr-a"), HaveField("ReceiveInterval", HaveValue(BeEquivalentTo(100))))))
		Expect(a.ToReceive.Allowed.Prefixes).To(BeEmpty(), "nothing is accepted from peers")
		Expect(a.ToAdvertise.PrefixesWithCommunity).To(ContainElements(
			frrv1beta1.CommunityPrefixes{Community: "65000:100", Prefixes: []string{"203.0.113.10/32"}},
			frrv1beta1.CommunityPrefixes{Community: "large:65000:1:2", Prefixes: []string{"203.0.113.10/32"}},
		))
		Expect(a.ToAdvertise.PrefixesWithLocalPref).To(BeEmpty(), "eBGP peers never see local preference")
		var sec corev1.Secret
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: frrNS, Name: "bgplb-node-a-rtr-a"}, &sec)).To(Succeed())
		Expect(sec.Type).To(Equal(corev1.SecretTypeBasicAuth))
		Expect(string(sec.Data["password"])).To(Equal("s3cret"))

		By("rtr-b: iBGP gets the local preference; rtr-6 (IPv6) no IPv4 prefix")
		Expect(neighbor(c, "127.0.0.3").ToAdvertise.PrefixesWithLocalPref).To(ContainElement(
			frrv1beta1.LocalPrefPrefixes{LocalPref: 200, Prefixes: []string{"203.0.113.10/32"}}))
		Expect(neighbor(c, "::1").ToAdvertise.Allowed.Prefixes).To(BeEmpty())
	})

	It("announces an externalTrafficPolicy Local Service only from the node with its endpoint", func() {
		announced("203.0.113.11", true, "node-b")
		Eventually(advertised("node-b", "127.0.0.2")).Should(ContainElement("203.0.113.11/32"))
		Consistently(advertised("node-a", "127.0.0.2")).ShouldNot(ContainElement("203.0.113.11/32"))
	})

	It("updates the object in place: same UID, new resourceVersion, and withdraws a deleted Service's address", func() {
		announced("203.0.113.12", false, "node-a")
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElement("203.0.113.12/32"))
		before := frrConfig("node-a")()
		s := announced("203.0.113.13", false, "node-a")
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElement("203.0.113.13/32"))
		after := frrConfig("node-a")()
		Expect(after.UID).To(Equal(before.UID))
		Expect(after.ResourceVersion).NotTo(Equal(before.ResourceVersion))
		Expect(after.CreationTimestamp).To(Equal(before.CreationTimestamp))

		Expect(k8s.Delete(ctx, s)).To(Succeed())
		Eventually(advertised("node-a", "127.0.0.2")).ShouldNot(ContainElement("203.0.113.13/32"))
		Expect(frrConfig("node-a")().UID).To(Equal(before.UID))
	})

	It("writes a node's config at most once per debounce interval, however many Services change", func() {
		announced("203.0.113.20", false, "node-a")
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElement("203.0.113.20/32"))
		time.Sleep(2 * debounce) // let the writes of the setup pass

		w, err := k8s.Watch(ctx, &frrv1beta1.FRRConfigurationList{}, client.InNamespace(frrNS),
			client.MatchingFields{"metadata.name": "bgplb-node-a"})
		Expect(err).NotTo(HaveOccurred())
		defer w.Stop()
		modified := make(chan struct{}, 1000)
		go func() {
			for ev := range w.ResultChan() {
				if ev.Type == watch.Modified {
					modified <- struct{}{}
				}
			}
		}()

		By("one Service: one write")
		writes := speakers["node-a"].backend.Writes()
		announced("203.0.113.21", false, "node-a")
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElement("203.0.113.21/32"))
		// The backend counts a write once the API server has answered it,
		// so the config may be read back a moment before the count moves.
		Eventually(speakers["node-a"].backend.Writes).Should(Equal(writes + 1))
		Consistently(speakers["node-a"].backend.Writes).Should(Equal(writes + 1))

		By("30 Services created as fast as possible")
		start := time.Now()
		want := []string{}
		for i := range 30 {
			addr := fmt.Sprintf("203.0.113.%d", 30+i)
			announced(addr, false, "node-a")
			want = append(want, addr+"/32")
		}
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElements(want))
		took := time.Since(start)
		time.Sleep(2 * debounce)
		w.Stop()
		n := len(modified)
		maxWrites := int(took/debounce) + 2
		fmt.Fprintf(GinkgoWriter, "30 Services in %v: %d writes of node-a's FRRConfiguration (at most %d allowed by a %v debounce)\n", took, n, maxWrites, debounce)
		Expect(n).To(BeNumerically("<=", maxWrites))
		Expect(n).To(BeNumerically(">=", 1))
	})

	It("drains: GRACEFUL_SHUTDOWN on every prefix, then withdraws them, keeping the sessions", func() {
		announced("203.0.113.14", false, "node-a")
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElement("203.0.113.14/32"))
		setNodeLabel("node-a", corev1.LabelNodeExcludeBalancers, ptrTo(""))
		DeferCleanup(setNodeLabel, "node-a", corev1.LabelNodeExcludeBalancers, (*string)(nil))
		Eventually(func() []frrv1beta1.CommunityPrefixes {
			return neighbor(frrConfig("node-a")(), "127.0.0.2").ToAdvertise.PrefixesWithCommunity
		}).Should(ContainElement(And(HaveField("Community", "65535:0"), HaveField("Prefixes", ContainElement("203.0.113.14/32")))))
		Eventually(advertised("node-a", "127.0.0.2")).Should(BeEmpty())
		Expect(neighbor(frrConfig("node-a")(), "127.0.0.2").Address).To(Equal("127.0.0.2"), "the session stays configured")
		Expect(advertised("node-b", "127.0.0.2")()).To(ContainElement("203.0.113.14/32"), "other nodes keep announcing")
	})

	It("leaves other components' FRRConfigurations alone and restores its own when deleted", func() {
		other := &frrv1beta1.FRRConfiguration{
			ObjectMeta: metav1.ObjectMeta{Namespace: frrNS, Name: "metallb-node-a"},
			Spec:       frrv1beta1.FRRConfigurationSpec{BGP: frrv1beta1.BGPConfig{Routers: []frrv1beta1.Router{{ASN: localASN, Prefixes: []string{"198.51.100.0/24"}}}}},
		}
		create(other)
		announced("203.0.113.15", false, "node-a")
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElement("203.0.113.15/32"))
		rv := other.ResourceVersion

		By("a user deletes bgplb's object: it comes back")
		uid := frrConfig("node-a")().UID
		Expect(k8s.Delete(ctx, frrConfig("node-a")())).To(Succeed())
		Eventually(func() types.UID {
			if c := frrConfig("node-a")(); c != nil {
				return c.UID
			}
			return ""
		}).WithTimeout(90 * time.Second).Should(And(Not(BeEmpty()), Not(Equal(uid))))
		Eventually(advertised("node-a", "127.0.0.2")).Should(ContainElement("203.0.113.15/32"))

		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(other), other)).To(Succeed())
		Expect(other.ResourceVersion).To(Equal(rv), "another component's config is never written")
	})
})

func setNodeLabel(node, key string, value *string) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var n corev1.Node
		if err := k8s.Get(ctx, types.NamespacedName{Name: node}, &n); err != nil {
			return err
		}
		if value == nil {
			delete(n.Labels, key)
		} else {
			n.Labels[key] = *value
		}
		return k8s.Update(ctx, &n)
	})).To(Succeed())
}
