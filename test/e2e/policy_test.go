package e2e

import (
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

// pool creates an IPPool only Services that ask for it by name use.
func pool(name string, addrs ...string) {
	GinkgoHelper()
	p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.IPPoolSpec{AutoAssign: ptr.To(false)}}
	for _, a := range addrs {
		p.Spec.Addresses = append(p.Spec.Addresses, v1alpha1.AddressRange(a))
	}
	create(p)
}

func inPool(name string) map[string]string {
	return map[string]string{v1alpha1.AnnotationIPPool: name}
}

// established lists the addresses of the router's Established sessions.
func established(r *lab.Router) ([]string, error) {
	nbrs, err := labcluster.Neighbors(r)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for a, n := range nbrs {
		if n.State == "Established" {
			out = append(out, a)
		}
	}
	return sorted(out...), nil
}

// sessionAddrs lists the nodes' session addresses towards r (both families).
func sessionAddrs(r *lab.Router, of ...string) []string {
	var out []string
	for _, n := range of {
		out = append(out, cluster.NextHop(n, r.Name, netip.MustParseAddr("192.0.2.0")).String(),
			cluster.NextHop(n, r.Name, netip.MustParseAddr("2001:db8::")).String())
	}
	return sorted(out...)
}

var _ = Describe("Announcement policy", bgpLabel, func() {
	BeforeEach(expectSessionsUp)

	It("d) honours the node selectors of BGPAdvertisements and BGPPeers", func() {
		const announce = "e2e.bgplb.io/announce"
		const rack = "e2e.bgplb.io/rack"
		selPool := mustPrefix("203.0.113.128/28")
		pool("e2e-select", selPool.String())
		create(&v1alpha1.BGPAdvertisement{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-select"},
			Spec: v1alpha1.BGPAdvertisementSpec{
				IPPools:      []string{"e2e-select"},
				NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{announce: "yes"}},
			},
		})
		labelNode("n1", announce, str("yes"))
		labelNode("n2", announce, str("yes"))
		_, addrs := createService(labcluster.ServiceOptions{Name: "selected", Annotations: inPool("e2e-select")}, 1)
		addr := addrs[0]
		Expect(addr).To(inPrefix(selPool))

		By("the advertisement's node selector picking n1 and n2")
		expectAnnounced(addr, "n1", "n2")
		By("labelling n3 too")
		labelNode("n3", announce, str("yes"))
		expectAnnounced(addr, "n1", "n2", "n3")
		By("removing n1's label")
		Expect(setNodeLabel("n1", announce, nil)).To(Succeed())
		expectAnnounced(addr, "n2", "n3")

		By("restricting BGPPeer r2-v4 to nodes in rack b (n3)")
		r1, r2 := cluster.Lab.Router("r1"), cluster.Lab.Router("r2")
		labelNode("n3", rack, str("b"))
		updatePeer("r2-v4", func(s *v1alpha1.BGPPeerSpec) {
			s.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{rack: "b"}}
		})
		// r2's IPv4 sessions: only n3's remains; IPv6 ones are another peer.
		want := sorted(append(filter6(sessionAddrs(r2, nodes...)), cluster.NextHop("n3", "r2", addr).String())...)
		Eventually(func() ([]string, error) { return established(r2) }).Should(Equal(want))
		Eventually(func() ([]string, error) {
			v, err := viewOf(r2, addr)
			return v.Kernel, err
		}).Should(Equal([]string{"n3"}), "r2 learns the address only from n3")
		Consistently(func() ([]string, error) {
			v, err := viewOf(r1, addr)
			return v.Kernel, err
		}).Should(Equal([]string{"n2", "n3"}), "r1 is not affected")

		By("lifting the restriction")
		Expect(setPeerSpec("r2-v4", func(s *v1alpha1.BGPPeerSpec) { s.NodeSelector = nil })).To(Succeed())
		Eventually(func() ([]string, error) { return established(r2) }, 2*time.Minute).Should(Equal(sessionAddrs(r2, nodes...)))
		expectAnnounced(addr, "n2", "n3")
	})

	It("e) sends communities and large communities to every peer, local preference only to the iBGP peer", func() {
		r2 := cluster.Lab.Router("r2")
		if backend == labcluster.BackendFRRK8s {
			// frr-k8s runs one BGP router, so one local AS, per node: a
			// peer asking for another local AS is left out
			// (docs/frr-k8s.md). r2 joins the nodes' AS instead.
			By("making r2 an iBGP peer: r2 takes the nodes' AS")
			reconfigureRouter(r2, func(cfg *lab.RouterConfig) {
				cfg.ASN = lab.NodeASN
				for i := range cfg.PeerGroups {
					cfg.PeerGroups[i].RemoteASN = lab.NodeASN
				}
			})
			for _, name := range []string{"r2-v4", "r2-v6"} {
				updatePeer(name, func(s *v1alpha1.BGPPeerSpec) { s.ASN = int64(lab.NodeASN) })
			}
		} else {
			By("making r2 an iBGP peer: the nodes use r2's AS on its sessions")
			reconfigureRouter(r2, func(cfg *lab.RouterConfig) {
				for i := range cfg.PeerGroups {
					cfg.PeerGroups[i].RemoteASN = cfg.ASN
				}
			})
			for _, name := range []string{"r2-v4", "r2-v6"} {
				updatePeer(name, func(s *v1alpha1.BGPPeerSpec) { s.LocalASN = int64(r2.ASN()) })
			}
		}
		Eventually(func() ([]string, error) { return established(r2) }, 2*time.Minute).Should(Equal(sessionAddrs(r2, nodes...)))

		attrPool := mustPrefix("203.0.113.144/28")
		pool("e2e-attrs", attrPool.String())
		create(&v1alpha1.BGPAdvertisement{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-attrs"},
			Spec: v1alpha1.BGPAdvertisementSpec{
				IPPools:          []string{"e2e-attrs"},
				Communities:      []v1alpha1.Community{"64512:100", "no-export"},
				LargeCommunities: []v1alpha1.LargeCommunity{"64512:1:100"},
				LocalPref:        ptr.To[int64](150),
			},
		})
		_, addrs := createService(labcluster.ServiceOptions{Name: "attrs", Annotations: inPool("e2e-attrs")}, 1)
		addr := addrs[0]
		Expect(addr).To(inPrefix(attrPool))
		// A Service of the lab pool, whose advertisement sets nothing: the
		// attributes must not leak onto it.
		_, plain := createService(labcluster.ServiceOptions{Name: "plain"}, 1)
		expectAnnounced(addr, nodes...)
		expectAnnounced(plain[0], nodes...)

		for _, r := range routers {
			v, err := viewOf(r, addr)
			Expect(err).NotTo(HaveOccurred())
			Expect(v.Paths).To(HaveLen(3))
			for _, p := range v.Paths {
				Expect(p.Communities).To(ConsistOf("64512:100", "no-export"), "%s: communities of %+v", r.Name, p)
				Expect(p.LargeCommunities).To(ConsistOf("64512:1:100"), "%s: large communities of %+v", r.Name, p)
				if r == r2 {
					Expect(p.PeerType).To(Equal("internal"))
					Expect(p.LocalPref).To(HaveValue(BeEquivalentTo(150)), "r2 (iBGP) gets LOCAL_PREF: %+v", p)
				} else {
					Expect(p.PeerType).To(Equal("external"))
					if p.LocalPref != nil {
						Expect(*p.LocalPref).NotTo(BeEquivalentTo(150), "r1 (eBGP) never gets LOCAL_PREF: %+v", p)
					}
				}
			}
			pv, err := viewOf(r, plain[0])
			Expect(err).NotTo(HaveOccurred())
			for _, p := range pv.Paths {
				Expect(p.Communities).To(BeEmpty(), "%s: the lab pool's advertisement sets no community: %+v", r.Name, p)
				Expect(p.LargeCommunities).To(BeEmpty(), "%s: %+v", r.Name, p)
				if p.LocalPref != nil {
					Expect(*p.LocalPref).NotTo(BeEquivalentTo(150), "%s: %+v", r.Name, p)
				}
			}
		}
	})

	It("f) establishes TCP-MD5 sessions with the right password and never with a wrong one", func() {
		r1, r2 := cluster.Lab.Router("r1"), cluster.Lab.Router("r2")
		const password = "lab-md5-s3cret"
		for name, pw := range map[string]string{"e2e-md5-right": password, "e2e-md5-wrong": "not-the-password"} {
			create(&corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.InstallNamespace, Name: name},
				StringData: map[string]string{"password": pw},
			})
		}
		_, addrs := createService(labcluster.ServiceOptions{Name: "md5"}, 1)
		addr := addrs[0]
		expectAnnounced(addr, nodes...)

		By("r1 requiring a password the speakers do not have")
		reconfigureRouter(r1, func(cfg *lab.RouterConfig) {
			for i := range cfg.PeerGroups {
				cfg.PeerGroups[i].Password = password
			}
		})
		By("the speakers using a wrong one")
		for _, name := range []string{"r1-v4", "r1-v6"} {
			updatePeer(name, func(s *v1alpha1.BGPPeerSpec) {
				s.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: "e2e-md5-wrong", Key: "password"}
			})
		}
		// The speakers retry every second: none of those tries may succeed.
		Consistently(func() ([]string, error) { return established(r1) }, 8*time.Second, 250*time.Millisecond).Should(BeEmpty(),
			"r1 established a session without the right password")
		Eventually(func() ([]string, error) {
			v, err := viewOf(r1, addr)
			return v.BGP, err
		}).Should(BeEmpty(), "r1 has no route while no session is up")
		Eventually(func(g Gomega) {
			for _, n := range nodes {
				g.Expect(nodeStatus(g, n)).To(HaveKeyWithValue("r1-v4", HaveField("State", Not(Equal(v1alpha1.SessionEstablished)))), "%s reports its r1 session", n)
			}
		}).Should(Succeed())
		Expect(established(r2)).To(Equal(sessionAddrs(r2, nodes...)), "r2 is not affected")

		By("the speakers using the right password")
		for _, name := range []string{"r1-v4", "r1-v6"} {
			Expect(setPeerSpec(name, func(s *v1alpha1.BGPPeerSpec) {
				s.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: "e2e-md5-right", Key: "password"}
			})).To(Succeed())
		}
		Eventually(func() ([]string, error) { return established(r1) }, 2*time.Minute).Should(Equal(sessionAddrs(r1, nodes...)))
		expectAnnounced(addr, nodes...)
	})
})

// filter6 keeps the IPv6 addresses.
func filter6(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil && ip.Is6() {
			out = append(out, a)
		}
	}
	return out
}
