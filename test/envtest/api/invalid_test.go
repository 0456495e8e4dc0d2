package api_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

var counter int

func name() string {
	counter++
	return fmt.Sprintf("obj-%d", counter)
}

func pool(addrs ...v1alpha1.AddressRange) *v1alpha1.IPPool {
	return &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name()}, Spec: v1alpha1.IPPoolSpec{Addresses: addrs}}
}

func peer(mut func(*v1alpha1.BGPPeerSpec)) *v1alpha1.BGPPeer {
	p := &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name()}, Spec: v1alpha1.BGPPeerSpec{Address: "192.0.2.1", ASN: 64500, LocalASN: 64512}}
	mut(&p.Spec)
	return p
}

func adv(mut func(*v1alpha1.BGPAdvertisementSpec)) *v1alpha1.BGPAdvertisement {
	a := &v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: name()}}
	mut(&a.Spec)
	return a
}

func l2adv(mut func(*v1alpha1.L2AdvertisementSpec)) *v1alpha1.L2Advertisement {
	a := &v1alpha1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: name()}}
	mut(&a.Spec)
	return a
}

func ifaces(names ...string) func(*v1alpha1.L2AdvertisementSpec) {
	return func(s *v1alpha1.L2AdvertisementSpec) {
		for _, n := range names {
			s.Interfaces = append(s.Interfaces, v1alpha1.InterfaceName(n))
		}
	}
}

func dur(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	Expect(err).NotTo(HaveOccurred())
	return &metav1.Duration{Duration: d}
}

func alloc(name, addr string) *v1alpha1.IPAllocation {
	return &v1alpha1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.IPAllocationSpec{
		Address: addr, Pool: "p", Services: []v1alpha1.ServiceReference{{Namespace: "default", Name: "web"}},
	}}
}

var _ = Describe("Admission of invalid objects", func() {
	// Each entry must be rejected as Invalid, with a message naming the field
	// and saying what is wrong with it.
	DescribeTable("is rejected with a message naming the field and the problem",
		func(obj client.Object, field, problem string) {
			err := k8s.Create(ctx, obj, client.DryRunAll)
			Expect(err).To(HaveOccurred(), "object should have been rejected")
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
			Expect(err.Error()).To(ContainSubstring(field))
			Expect(err.Error()).To(ContainSubstring(problem))
		},
		// IPPool
		Entry("pool without addresses", pool(), "spec.addresses", "Required value"),
		Entry("pool with an empty address list", func() *v1alpha1.IPPool {
			p := pool()
			p.Spec.Addresses = []v1alpha1.AddressRange{}
			return p
		}(), "spec.addresses", "should have at least 1 items"),
		Entry("pool with garbage address", pool("not-an-address"), "spec.addresses[0]", "must be a CIDR or a range"),
		Entry("pool with bad CIDR", pool("192.0.2.0/33"), "spec.addresses[0]", "must be a valid CIDR"),
		Entry("pool CIDR with host bits", pool("192.0.2.1/24"), "spec.addresses[0]", "must not have host bits set"),
		Entry("pool range of mixed families", pool("192.0.2.1-2001:db8::1"), "spec.addresses[0]", "same IP family"),
		Entry("pool IPv4 range backwards", pool("192.0.2.20-192.0.2.10"), "spec.addresses[0]", "start must not be after its end"),
		Entry("pool IPv4 range backwards across octets", pool("192.0.3.0-192.0.2.255"), "spec.addresses[0]", "start must not be after its end"),
		Entry("pool IPv6 range backwards", pool("2001:db8::ff-2001:db8::1"), "spec.addresses[0]", "start must not be after its end"),
		Entry("pool IPv6 range backwards, compressed differently", pool("2001:db8:0:1::-2001:db8::ffff"), "spec.addresses[0]", "start must not be after its end"),
		Entry("pool range with three parts", pool("192.0.2.1-192.0.2.2-192.0.2.3"), "spec.addresses[0]", "must be a CIDR or a range"),
		Entry("pool negative priority", func() *v1alpha1.IPPool {
			p := pool("192.0.2.0/24")
			p.Spec.AllocateTo = &v1alpha1.AllocateTo{Priority: -1}
			return p
		}(), "spec.allocateTo.priority", "should be greater than or equal to 0"),
		// BGPPeer
		Entry("peer ASN 0", peer(func(s *v1alpha1.BGPPeerSpec) { s.ASN = 0 }), "spec.asn", "should be greater than or equal to 1"),
		Entry("peer ASN 4294967295", peer(func(s *v1alpha1.BGPPeerSpec) { s.ASN = 4294967295 }), "spec.asn", "should be less than or equal to 4294967294"),
		Entry("peer local ASN too large", peer(func(s *v1alpha1.BGPPeerSpec) { s.LocalASN = 1 << 33 }), "spec.localASN", "should be less than or equal to 4294967294"),
		Entry("peer address not an IP", peer(func(s *v1alpha1.BGPPeerSpec) { s.Address = "router.example" }), "spec.address", "must be an IP address"),
		Entry("peer port 0", peer(func(s *v1alpha1.BGPPeerSpec) { s.Port = -1 }), "spec.port", "should be greater than or equal to 1"),
		Entry("peer port 65536", peer(func(s *v1alpha1.BGPPeerSpec) { s.Port = 65536 }), "spec.port", "should be less than or equal to 65535"),
		Entry("peer hold time 2s", peer(func(s *v1alpha1.BGPPeerSpec) { s.HoldTime = dur("2s") }), "spec.holdTime", "holdTime must be between 3s and 65535s"),
		Entry("peer hold time 0 (the BGP engine cannot propose it)", peer(func(s *v1alpha1.BGPPeerSpec) { s.HoldTime = dur("0s"); s.KeepaliveTime = dur("1s") }), "spec.holdTime", "a hold time of 0 is not supported"),
		Entry("peer keepalive not below hold", peer(func(s *v1alpha1.BGPPeerSpec) { s.HoldTime = dur("9s"); s.KeepaliveTime = dur("9s") }), "spec", "keepaliveTime must be less than holdTime"),
		Entry("peer multihop TTL 0", peer(func(s *v1alpha1.BGPPeerSpec) { s.EBGPMultihop = ptr.To[int32](0) }), "spec.ebgpMultihop", "should be greater than or equal to 1"),
		Entry("peer multihop TTL 256", peer(func(s *v1alpha1.BGPPeerSpec) { s.EBGPMultihop = ptr.To[int32](256) }), "spec.ebgpMultihop", "should be less than or equal to 255"),
		Entry("peer source address of other family", peer(func(s *v1alpha1.BGPPeerSpec) { s.SourceAddress = "2001:db8::1" }), "spec", "sourceAddress must be of the same IP family"),
		Entry("peer BFD interval too short", peer(func(s *v1alpha1.BGPPeerSpec) { s.BFD = &v1alpha1.BFD{Enabled: true, MinTransmitInterval: dur("1ms")} }), "spec.bfd.minTransmitInterval", "between 10ms and 60s"),
		Entry("peer BFD multiplier 1", peer(func(s *v1alpha1.BGPPeerSpec) {
			s.BFD = &v1alpha1.BFD{Enabled: true, DetectMultiplier: ptr.To[int32](1)}
		}), "spec.bfd.detectMultiplier", "should be greater than or equal to 2"),
		Entry("peer graceful restart time too long", peer(func(s *v1alpha1.BGPPeerSpec) {
			s.GracefulRestart = &v1alpha1.GracefulRestart{Enabled: true, RestartTime: dur("4096s")}
		}), "spec.gracefulRestart.restartTime", "between 1s and 4095s"),
		Entry("peer password ref without name", peer(func(s *v1alpha1.BGPPeerSpec) { s.PasswordSecretRef = &v1alpha1.SecretKeyReference{} }), "spec.passwordSecretRef.name", "should be at least 1 chars long"),
		// BGPAdvertisement
		Entry("community not AA:NN", adv(func(s *v1alpha1.BGPAdvertisementSpec) { s.Communities = []v1alpha1.Community{"65000"} }), "spec.communities[0]", "must be AA:NN or a well-known community"),
		Entry("community half too large", adv(func(s *v1alpha1.BGPAdvertisementSpec) { s.Communities = []v1alpha1.Community{"65536:1"} }), "spec.communities[0]", "between 0 and 65535"),
		Entry("unknown well-known community", adv(func(s *v1alpha1.BGPAdvertisementSpec) { s.Communities = []v1alpha1.Community{"no-such-thing"} }), "spec.communities[0]", "must be AA:NN or a well-known community"),
		Entry("large community with two parts", adv(func(s *v1alpha1.BGPAdvertisementSpec) { s.LargeCommunities = []v1alpha1.LargeCommunity{"1:2"} }), "spec.largeCommunities[0]", "must be A:B:C"),
		Entry("large community part too large", adv(func(s *v1alpha1.BGPAdvertisementSpec) {
			s.LargeCommunities = []v1alpha1.LargeCommunity{"4294967296:1:1"}
		}), "spec.largeCommunities[0]", "between 0 and 4294967295"),
		Entry("IPv4 aggregation length 33", adv(func(s *v1alpha1.BGPAdvertisementSpec) { s.AggregationLength = ptr.To[int32](33) }), "spec.aggregationLength", "should be less than or equal to 32"),
		Entry("IPv6 aggregation length 129", adv(func(s *v1alpha1.BGPAdvertisementSpec) { s.AggregationLengthV6 = ptr.To[int32](129) }), "spec.aggregationLengthV6", "should be less than or equal to 128"),
		Entry("local preference 0", adv(func(s *v1alpha1.BGPAdvertisementSpec) { s.LocalPref = ptr.To[int64](0) }), "spec.localPref", "should be greater than or equal to 1"),
		// L2Advertisement
		Entry("L2 interface name of 16 characters", l2adv(ifaces("abcdefghijklmnop")), "spec.interfaces[0]", "may not be more than 15 bytes"),
		Entry("L2 empty interface name", l2adv(ifaces("")), "spec.interfaces[0]", "should be at least 1 chars long"),
		Entry("L2 interface name with a slash", l2adv(ifaces("eth0/1")), "spec.interfaces[0]", "must not contain '/', ':' or white space"),
		Entry("L2 interface name with a colon (an alias, not an interface)", l2adv(ifaces("eth0:1")), "spec.interfaces[0]", "must not contain '/', ':' or white space"),
		Entry("L2 interface name with a space", l2adv(ifaces("eth 0")), "spec.interfaces[0]", "must not contain '/', ':' or white space"),
		Entry("L2 interface name ..", l2adv(ifaces("..")), "spec.interfaces[0]", "must not be '.' or '..'"),
		Entry("L2 interface listed twice", l2adv(ifaces("eth0", "eth0")), "spec.interfaces[1]", "Duplicate value"),
		Entry("L2 pool listed twice", l2adv(func(s *v1alpha1.L2AdvertisementSpec) { s.IPPools = []string{"a", "a"} }), "spec.ipPools[1]", "Duplicate value"),
		// IPAllocation
		Entry("allocation of a non-address", alloc("x", "x"), "spec.address", "must be an IP address in canonical form"),
		Entry("allocation of a non-canonical address", alloc("2001-db8--0001", "2001:db8::0001"), "spec.address", "canonical form"),
		Entry("allocation named after another address", alloc("192.0.2.9", "192.0.2.10"), "metadata.name", "must be spec.address with ':' replaced by '-'"),
		Entry("allocation of an address ending in :: named without the \"--0\"", alloc("2001-db8-0", "2001:db8::"), "metadata.name", "must be spec.address with ':' replaced by '-'"),
		Entry("allocation of ::1 named 1--1", alloc("1--1", "::1"), "metadata.name", "a '0' added at an end"),
	)

	DescribeTable("valid edge cases are accepted",
		func(obj client.Object) {
			Expect(k8s.Create(ctx, obj, client.DryRunAll)).To(Succeed())
		},
		Entry("single-address IPv4 range", pool("192.0.2.7-192.0.2.7")),
		Entry("IPv4 range across octets", pool("192.0.2.250-192.0.3.5")),
		Entry("IPv4 range with spaces", pool("192.0.2.1 - 192.0.2.9")),
		Entry("IPv6 range with compressed forms", pool("2001:db8::ffff-2001:db8:0:1::")),
		Entry("IPv6 range, full form", pool("2001:0db8:0000:0000:0000:0000:0000:0001-2001:db8::2")),
		Entry("mixed-family pool", pool("192.0.2.0/24", "2001:db8::/64", "198.51.100.1-198.51.100.9")),
		Entry("short timers", peer(func(s *v1alpha1.BGPPeerSpec) { s.HoldTime = dur("3s"); s.KeepaliveTime = dur("1s") })),
		Entry("4-byte ASN", peer(func(s *v1alpha1.BGPPeerSpec) { s.ASN = 4294967294; s.LocalASN = 4200000000 })),
		Entry("IPv6 peer", peer(func(s *v1alpha1.BGPPeerSpec) { s.Address = "2001:db8::1"; s.SourceAddress = "2001:db8::2" })),
		Entry("well-known communities", adv(func(s *v1alpha1.BGPAdvertisementSpec) {
			s.Communities = []v1alpha1.Community{"no-export", "graceful-shutdown", "blackhole", "65535:65535", "0:0"}
			s.LargeCommunities = []v1alpha1.LargeCommunity{"4294967295:0:4294967295"}
		})),
		Entry("empty L2 advertisement (every pool, every node, the interface of the address's subnet)", l2adv(func(*v1alpha1.L2AdvertisementSpec) {})),
		Entry("L2 interface names Linux allows", l2adv(ifaces("eth0", "bond0.100", "enp0s31f6", "br-lan_1", "abcdefghijklmno"))),
		Entry("L2 advertisement with selectors", l2adv(func(s *v1alpha1.L2AdvertisementSpec) {
			s.IPPools = []string{"lan"}
			s.IPPoolSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"mode": "l2"}}
			s.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "rack", Operator: metav1.LabelSelectorOpIn, Values: []string{"r1"}}}}
		})),
		Entry("IPv6 allocation", alloc("2001-db8--1", "2001:db8::1")),
		Entry("IPv6 allocation of an address ending in ::", alloc("2001-db8--0", "2001:db8::")),
		Entry("IPv6 allocation of an address starting with ::", alloc("0--1", "::1")),
		Entry("IPv6 allocation of ::", alloc("0--0", "::")),
	)

	It("defaults what the user leaves out", func() {
		p := peer(func(*v1alpha1.BGPPeerSpec) {})
		p.Spec.BFD = &v1alpha1.BFD{Enabled: true}
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Expect(p.Spec.Port).To(Equal(int32(179)))
		// The timers are not defaulted by the schema (a stored default would
		// contradict the other one when the user sets it); see the timer
		// table below.
		Expect(p.Spec.HoldTime).To(BeNil())
		Expect(p.Spec.KeepaliveTime).To(BeNil())
		Expect(p.Spec.ConnectRetryTime.Duration).To(Equal(5 * time.Second))
		Expect(p.Spec.BFD.MinReceiveInterval.Duration).To(Equal(300 * time.Millisecond))
		Expect(*p.Spec.BFD.DetectMultiplier).To(Equal(int32(3)))
		pl := pool("192.0.2.0/24")
		Expect(k8s.Create(ctx, pl)).To(Succeed())
		Expect(pl.Spec.AutoAssign).To(Equal(ptr.To(true)))
		a := adv(func(*v1alpha1.BGPAdvertisementSpec) {})
		Expect(k8s.Create(ctx, a)).To(Succeed())
		Expect(*a.Spec.AggregationLength).To(Equal(int32(32)))
		Expect(*a.Spec.AggregationLengthV6).To(Equal(int32(128)))
	})

	// BGP timers: whichever of holdTime and keepaliveTime the user leaves out
	// is derived from the other by EffectiveTimers, never defaulted by the
	// schema, so setting only one of them is always admitted.
	DescribeTable("BGP timers are admitted or rejected as documented, with their effective values",
		func(hold, keepalive, rejection string, wantHold, wantKeepalive time.Duration) {
			p := peer(func(s *v1alpha1.BGPPeerSpec) {
				if hold != "" {
					s.HoldTime = dur(hold)
				}
				if keepalive != "" {
					s.KeepaliveTime = dur(keepalive)
				}
			})
			err := k8s.Create(ctx, p)
			if rejection != "" {
				Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
				Expect(err.Error()).To(ContainSubstring(rejection))
				return
			}
			Expect(err).NotTo(HaveOccurred())
			// Read back what the API server stored: nothing filled in.
			var got v1alpha1.BGPPeer
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), &got)).To(Succeed())
			Expect(got.Spec.HoldTime).To(Equal(p.Spec.HoldTime))
			Expect(got.Spec.KeepaliveTime).To(Equal(p.Spec.KeepaliveTime))
			h, k := got.Spec.EffectiveTimers()
			Expect([]time.Duration{h, k}).To(Equal([]time.Duration{wantHold, wantKeepalive}))
		},
		Entry("neither", "", "", "", 90*time.Second, 30*time.Second),
		Entry("holdTime only (issue #10)", "9s", "", "", 9*time.Second, 3*time.Second),
		Entry("holdTime only, the minimum", "3s", "", "", 3*time.Second, time.Second),
		Entry("holdTime only, longer than the old keepalive default", "240s", "", "", 240*time.Second, 80*time.Second),
		Entry("keepaliveTime only, short", "", "1s", "", 90*time.Second, time.Second),
		Entry("keepaliveTime only, longer than the old hold default", "", "120s", "", 360*time.Second, 120*time.Second),
		Entry("both", "9s", "3s", "", 9*time.Second, 3*time.Second),
		Entry("both, fractions that round apart", "8500ms", "8400ms", "", 9*time.Second, 8*time.Second),
		Entry("both, keepalive equal to hold", "9s", "9s", "keepaliveTime must be less than holdTime", time.Duration(0), time.Duration(0)),
		Entry("both, keepalive above hold", "9s", "30s", "keepaliveTime must be less than holdTime", time.Duration(0), time.Duration(0)),
		Entry("holdTime 1s", "1s", "", "holdTime must be between 3s and 65535s", time.Duration(0), time.Duration(0)),
		Entry("holdTime 0 (no keepalives) is not supported", "0s", "", "a hold time of 0 is not supported", time.Duration(0), time.Duration(0)),
		Entry("keepaliveTime 0", "", "0s", "keepaliveTime must be between 1s and 21845s", time.Duration(0), time.Duration(0)),
	)

	It("keeps an allocation's address immutable", func() {
		a := alloc("192.0.2.44", "192.0.2.44")
		Expect(k8s.Create(ctx, a)).To(Succeed())
		a.Spec.Address = "192.0.2.45"
		err := k8s.Update(ctx, a)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("address is immutable"))
	})
})
