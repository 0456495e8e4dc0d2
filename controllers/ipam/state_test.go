package ipam

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/ownership"
	"github.com/bgplb/bgplb/internal/allocator"
)

// world is a State plus the Services it decides for, with the API writes
// simulated (every write succeeds), so decisions can be followed over time.
type world struct {
	t    *testing.T
	s    *State
	svcs map[svcKey]*corev1.Service
}

func newWorld(t *testing.T, pools ...v1alpha1.IPPool) *world {
	w := &world{t: t, s: NewState(), svcs: map[svcKey]*corev1.Service{}}
	w.s.Build(pools, nil)
	return w
}

func (w *world) setPools(pools ...v1alpha1.IPPool) { w.s.SetPools(BuildPoolViews(pools)) }

type svcMod func(*corev1.Service)

func withAnn(k, v string) svcMod {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}
func withPorts(ps ...int32) svcMod {
	return func(s *corev1.Service) {
		s.Spec.Ports = nil
		for _, p := range ps {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p, Protocol: corev1.ProtocolTCP})
		}
	}
}
func withPolicy(p corev1.IPFamilyPolicy, fams ...corev1.IPFamily) svcMod {
	return func(s *corev1.Service) { s.Spec.IPFamilyPolicy, s.Spec.IPFamilies = &p, fams }
}
func withIngress(ips ...string) svcMod {
	return func(s *corev1.Service) {
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
	}
}

// apply creates or changes a Service and decides for it.
func (w *world) apply(name string, mods ...svcMod) Decision {
	w.t.Helper()
	k := svcKey{Namespace: "ns", Name: name}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: ptr.To(v1alpha1.LoadBalancerClass)},
	}
	withPorts(80)(svc)
	for _, m := range mods {
		m(svc)
	}
	w.svcs[k] = svc
	return w.decide(k)
}

// remove deletes a Service and decides for it.
func (w *world) remove(name string) Decision {
	k := svcKey{Namespace: "ns", Name: name}
	delete(w.svcs, k)
	return w.decide(k)
}

func (w *world) decide(k svcKey) Decision {
	w.t.Helper()
	svc := w.svcs[k]
	in := ServiceInput{Key: k}
	if ownership.Qualifies(svc, true) {
		in.Manage, in.UID = true, svc.UID
		in.Families, in.RequireAll = FamilyNeeds(svc)
		in.Req, in.ReqErr = ParseRequest(svc)
		in.Share = ShareInfoOf(svc, in.Req)
		in.Ingress = IngressAddrs(svc)
	}
	d := w.s.Decide(in, w.lookup)
	if len(d.Verify) > 0 {
		// In this world memory is the API: reading it changes nothing.
		in.Verified = true
		d = w.s.Decide(in, w.lookup)
	}
	// Simulate the writes: objects as decided, then the status.
	for _, rec := range append(slices.Clone(d.Acquire), d.Release...) {
		wr := w.s.snapshot(rec)
		if len(wr.want) == 0 {
			w.s.gone(rec)
		} else {
			w.s.wrote(rec, &v1alpha1.IPAllocation{Spec: v1alpha1.IPAllocationSpec{
				Address: wr.addr.String(), Pool: wr.pool, SharingKey: wr.key, Services: wr.want}})
		}
	}
	for _, rec := range d.Release {
		w.s.doneReleasing(k, rec)
	}
	if svc != nil {
		// As the reconciler does: our addresses, plus the conflicting ones left as they were.
		ing := Ingress(d.Outcome.Addrs)
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if slices.Contains(d.Foreign, netip.MustParseAddr(in.IP)) {
				ing = append(ing, in)
			}
		}
		svc.Status.LoadBalancer.Ingress = ing
	}
	return d
}

func (w *world) lookup(k svcKey) (ShareInfo, bool) {
	svc := w.svcs[k]
	if svc == nil {
		return ShareInfo{}, false
	}
	req, _ := ParseRequest(svc)
	return ShareInfoOf(svc, req), true
}

func addrs(d Decision) string {
	var s []string
	for _, a := range d.Outcome.Addrs {
		s = append(s, a.Addr.String())
	}
	return strings.Join(s, ",")
}

func reason(d Decision) string {
	if d.Outcome.Failure == nil {
		return ""
	}
	return d.Outcome.Failure.Reason
}

func (w *world) expect(d Decision, wantAddrs, wantReason string) {
	w.t.Helper()
	if got := addrs(d); got != wantAddrs {
		w.t.Fatalf("addresses %q, want %q (failure %v)", got, wantAddrs, d.Outcome.Failure)
	}
	if got := reason(d); got != wantReason {
		w.t.Fatalf("reason %q, want %q (%v)", got, wantReason, d.Outcome.Failure)
	}
}

func (w *world) holders(addr string) []string {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	rec := w.s.recs[netip.MustParseAddr(addr)]
	if rec == nil {
		return nil
	}
	var out []string
	for _, r := range rec.want {
		out = append(out, r.Name)
	}
	return out
}

func TestDecideAllocatesAndKeeps(t *testing.T) {
	w := newWorld(t, mkPool("p", 0, "192.0.2.0/30"))
	w.expect(w.apply("a"), "192.0.2.0", "")
	w.expect(w.apply("b"), "192.0.2.1", "")
	// Deciding again, or on an unrelated change, keeps the address.
	w.expect(w.apply("a", withPorts(81)), "192.0.2.0", "")
	w.expect(w.apply("c"), "192.0.2.2", "")
	w.expect(w.apply("d"), "192.0.2.3", "")
	w.expect(w.apply("e"), "", v1alpha1.ReasonPoolExhausted)
	d := w.remove("b")
	if d.Outcome.Manage || len(d.Released) != 1 || d.Released[0].String() != "192.0.2.1" {
		t.Fatalf("removal: %+v", d)
	}
	if w.holders("192.0.2.1") != nil {
		t.Fatal("released address still held")
	}
	w.expect(w.apply("e"), "192.0.2.1", "")
}

func TestDecideRequests(t *testing.T) {
	w := newWorld(t, mkPool("p", 0, "192.0.2.0/29", "2001:db8::/120"), withAvoid(mkPool("buggy", 0, "198.51.100.0/24")),
		func() v1alpha1.IPPool {
			p := mkPool("named", 0, "203.0.113.0/30")
			p.Spec.AutoAssign = ptr.To(false)
			return p
		}())
	ips := v1alpha1.AnnotationLoadBalancerIPs
	w.expect(w.apply("a", withAnn(ips, "192.0.2.5")), "192.0.2.5", "")
	d := w.apply("b", withAnn(ips, "192.0.2.5"))
	w.expect(d, "", v1alpha1.ReasonRequestedAddressUnavailable)
	if !strings.Contains(d.Outcome.Failure.Message, "is held by ns/a") {
		t.Fatalf("message %q", d.Outcome.Failure.Message)
	}
	v6only := withPolicy(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol)
	for _, tc := range []struct {
		req, msg string
		mods     []svcMod
	}{
		{"192.0.2.100", "is not in any pool", nil},
		{"198.51.100.255", "skips addresses ending in .0 and .255", nil},
		{"2001:db8:1::", "is not in any pool", []svcMod{v6only}},
	} {
		d := w.apply("c", append(tc.mods, withAnn(ips, tc.req))...)
		w.expect(d, "", v1alpha1.ReasonRequestedAddressUnavailable)
		if !strings.Contains(d.Outcome.Failure.Message, tc.msg) {
			t.Fatalf("%s: message %q, want %q", tc.req, d.Outcome.Failure.Message, tc.msg)
		}
	}
	d = w.apply("c", withAnn(ips, "192.0.2.6"), withAnn(v1alpha1.AnnotationIPPool, "named"))
	w.expect(d, "", v1alpha1.ReasonRequestedAddressUnavailable)
	if !strings.Contains(d.Outcome.Failure.Message, "is not in pool named") {
		t.Fatalf("message %q", d.Outcome.Failure.Message)
	}
	w.expect(w.apply("c", withAnn(v1alpha1.AnnotationIPPool, "named")), "203.0.113.0", "")
	w.expect(w.apply("v6", withAnn(ips, "2001:db8::7")), "", v1alpha1.ReasonInvalidRequest) // SingleStack IPv4
	w.expect(w.apply("v6", withAnn(ips, "2001:db8::7"), withPolicy(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol)), "2001:db8::7", "")

	// Changing the request: keep the old address until the new one can be had.
	w.expect(w.apply("a", withAnn(ips, "192.0.2.6")), "192.0.2.6", "")
	if w.holders("192.0.2.5") != nil {
		t.Fatal("old address not released after the move")
	}
	w.expect(w.apply("x", withAnn(ips, "192.0.2.7")), "192.0.2.7", "")
	w.expect(w.apply("a", withAnn(ips, "192.0.2.7")), "192.0.2.6", v1alpha1.ReasonRequestedAddressUnavailable)
	// An invalid edit keeps the address too.
	w.expect(w.apply("a", withAnn(ips, "garbage")), "192.0.2.6", v1alpha1.ReasonInvalidRequest)
	// The first IPv6 address of the pool is handed out like any other.
	w.expect(w.apply("auto6", withPolicy(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol)), "2001:db8::", "")
}

func withAvoid(p v1alpha1.IPPool) v1alpha1.IPPool { p.Spec.AvoidBuggyIPs = true; return p }

func TestDecideFamilies(t *testing.T) {
	w := newWorld(t, mkPool("v4", 0, "192.0.2.0/30"))
	v4, v6 := corev1.IPv4Protocol, corev1.IPv6Protocol
	d := w.apply("req", withPolicy(corev1.IPFamilyPolicyRequireDualStack, v4, v6))
	w.expect(d, "", v1alpha1.ReasonNoMatchingPool)
	if w.holders("192.0.2.0") != nil {
		t.Fatal("RequireDualStack kept half an allocation")
	}
	d = w.apply("pref", withPolicy(corev1.IPFamilyPolicyPreferDualStack, v6, v4))
	w.expect(d, "192.0.2.0", "")
	if !slices.Equal(d.Outcome.Missing, []allocator.Family{allocator.IPv6}) || d.Outcome.Complete() {
		t.Fatalf("missing %v", d.Outcome.Missing)
	}
	w.setPools(mkPool("v4", 0, "192.0.2.0/30"), mkPool("v6", 0, "2001:db8::/120"))
	w.expect(w.apply("pref", withPolicy(corev1.IPFamilyPolicyPreferDualStack, v6, v4)), "2001:db8::,192.0.2.0", "")
	w.expect(w.apply("req", withPolicy(corev1.IPFamilyPolicyRequireDualStack, v4, v6)), "192.0.2.1,2001:db8::1", "")
	// Dropping to SingleStack releases the other family.
	d = w.apply("req", withPolicy(corev1.IPFamilyPolicySingleStack, v4))
	w.expect(d, "192.0.2.1", "")
	if len(d.Released) != 1 || d.Released[0].String() != "2001:db8::1" {
		t.Fatalf("released %v", d.Released)
	}
}

func TestDecideSharing(t *testing.T) {
	w := newWorld(t, mkPool("p", 0, "192.0.2.0/29"))
	key := v1alpha1.AnnotationSharingKey
	w.expect(w.apply("a", withAnn(key, "k"), withPorts(80)), "192.0.2.0", "")
	w.expect(w.apply("b", withAnn(key, "k"), withPorts(443)), "192.0.2.0", "")
	w.expect(w.apply("c", withAnn(key, "k"), withPorts(80)), "192.0.2.1", "")
	w.expect(w.apply("d", withAnn(key, "k"), withPorts(8080)), "192.0.2.0", "")
	if got := w.holders("192.0.2.0"); !slices.Equal(got, []string{"a", "b", "d"}) {
		t.Fatalf("holders %v", got)
	}
	// Requesting the shared address with a clashing port.
	d := w.apply("e", withAnn(key, "k"), withPorts(443), withAnn(v1alpha1.AnnotationLoadBalancerIPs, "192.0.2.0"))
	w.expect(d, "", v1alpha1.ReasonSharingConflict)
	// A holder changes its ports to clash: it moves to an address it can have.
	w.expect(w.apply("d", withAnn(key, "k"), withPorts(80)), "192.0.2.2", "")
	// Leaving one by one: the address is freed with the last.
	w.remove("a")
	if got := w.holders("192.0.2.0"); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("holders after a left: %v", got)
	}
	w.remove("b")
	if w.holders("192.0.2.0") != nil {
		t.Fatal("shared address not freed")
	}
}

func TestDecideAdoption(t *testing.T) {
	w := newWorld(t, mkPool("p", 0, "192.0.2.0/29"))
	w.expect(w.apply("restored", withIngress("192.0.2.5")), "192.0.2.5", "")
	d := w.apply("clash", withIngress("192.0.2.5"))
	w.expect(d, "", v1alpha1.ReasonAddressConflict)
	if len(d.Foreign) != 1 || d.Foreign[0].String() != "192.0.2.5" {
		t.Fatalf("foreign %v", d.Foreign)
	}
	// An address in no pool is not adopted: the Service gets one from a pool.
	w.expect(w.apply("stray", withIngress("203.0.113.9")), "192.0.2.0", "")
	// Once the holder goes, the conflicting Service takes its address.
	w.remove("restored")
	w.expect(w.decide(svcKey{Namespace: "ns", Name: "clash"}), "192.0.2.5", "")
}

func TestDecideReleasesStaleUID(t *testing.T) {
	w := newWorld(t, mkPool("p", 0, "192.0.2.0/30"))
	w.expect(w.apply("a"), "192.0.2.0", "")
	// Deleted and re-created under the same name while we looked away.
	d := w.apply("a", func(s *corev1.Service) { s.UID = "new" })
	w.expect(d, "192.0.2.1", "")
	if len(d.Released) != 1 || d.Released[0].String() != "192.0.2.0" {
		t.Fatalf("released %v", d.Released)
	}
}

func TestDecidePoolEdits(t *testing.T) {
	w := newWorld(t, mkPool("p", 0, "192.0.2.0/30"))
	w.expect(w.apply("a"), "192.0.2.0", "")
	w.expect(w.apply("b"), "192.0.2.1", "")
	changed, retry := w.s.SetPools(BuildPoolViews([]v1alpha1.IPPool{mkPool("p", 0, "192.0.2.1/32", "192.0.2.2/31")}))
	if !slices.Equal(changed, []string{"p"}) || len(retry) != 2 {
		t.Fatalf("changed %v retry %v", changed, retry)
	}
	d := w.apply("a")
	w.expect(d, "192.0.2.0", "")
	if !d.Outcome.Addrs[0].Outside || ServiceCondition(d.Outcome, 0).Reason != v1alpha1.ReasonAddressOutsidePool {
		t.Fatalf("cut-out address not flagged: %+v", d.Outcome)
	}
	w.expect(w.apply("c"), "192.0.2.2", "")
	w.remove("a")
	w.expect(w.apply("d"), "192.0.2.3", "")
	w.expect(w.apply("e"), "", v1alpha1.ReasonPoolExhausted)

	disabled := mkPool("p", 0, "192.0.2.1/32", "192.0.2.2/31")
	disabled.Spec.Disabled = true
	w.setPools(disabled)
	w.expect(w.apply("b"), "192.0.2.1", "")
	w.expect(w.apply("f"), "", v1alpha1.ReasonNoMatchingPool)
}

func TestBuildAndObjects(t *testing.T) {
	s := NewState()
	obj := func(addr string, pool string, svcs ...string) v1alpha1.IPAllocation {
		a := v1alpha1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.AllocationName(addr), UID: types.UID("o-" + addr)},
			Spec: v1alpha1.IPAllocationSpec{Address: addr, Pool: pool}}
		for _, n := range svcs {
			a.Spec.Services = append(a.Spec.Services, v1alpha1.ServiceReference{Namespace: "ns", Name: n, UID: types.UID("uid-" + n)})
		}
		return a
	}
	keys := s.Build([]v1alpha1.IPPool{mkPool("p", 0, "192.0.2.0/30")}, []v1alpha1.IPAllocation{
		obj("192.0.2.0", "p", "a"), obj("192.0.2.2", "gone-pool", "b", "c")})
	if len(keys) != 3 {
		t.Fatalf("holders to reconcile: %v", keys)
	}
	w := &world{t: t, s: s, svcs: map[svcKey]*corev1.Service{}}
	w.expect(w.apply("a"), "192.0.2.0", "")
	w.expect(w.apply("new"), "192.0.2.1", "")
	w.expect(w.apply("new2"), "192.0.2.3", "") // .2 is held by a pool that no longer exists

	// An allocation made elsewhere (another instance) is taken in as held.
	other := obj("192.0.2.1", "p", "x")
	if keys := s.Observe(&other); keys != nil {
		t.Fatalf("known address: %v", keys)
	}
	// Losing a race for a fresh address: the record goes to the winner and
	// the next decision takes another address.
	w2 := newWorld(t, mkPool("p", 0, "192.0.2.0/30"))
	d := w2.s.Decide(ServiceInput{Key: svcKey{Namespace: "ns", Name: "loser"}, UID: "u", Manage: true, Families: []allocator.Family{allocator.IPv4}, RequireAll: true}, nil)
	if addrs(d) != "192.0.2.0" {
		t.Fatalf("first pick %s", addrs(d))
	}
	winner := obj("192.0.2.0", "p", "winner")
	if _, lost := w2.s.refresh(d.Acquire[0], &winner); !lost {
		t.Fatal("refresh with another Service's object: not lost")
	}
	d = w2.s.Decide(ServiceInput{Key: svcKey{Namespace: "ns", Name: "loser"}, UID: "u", Manage: true, Families: []allocator.Family{allocator.IPv4}, RequireAll: true}, nil)
	if addrs(d) != "192.0.2.1" || !slices.Equal(w2.holders("192.0.2.0"), []string{"winner"}) {
		t.Fatalf("after losing: %s, holders of .0 %v", addrs(d), w2.holders("192.0.2.0"))
	}

	// Deleted behind our back while wanted: the holders are told to recreate it.
	mine := obj("192.0.2.1", "p", "loser")
	w2.s.wrote(d.Acquire[0], &mine)
	if keys := w2.s.Forget(&mine); len(keys) != 1 || keys[0].Name != "loser" {
		t.Fatalf("forget: %v", keys)
	}
	if w2.s.snapshot(d.Acquire[0]).exists {
		t.Fatal("record still thought to exist")
	}
	// An unknown allocation seen in the cache is held from then on.
	foreign := obj("192.0.2.3", "p", "z")
	if keys := w2.s.Observe(&foreign); len(keys) != 1 || keys[0].Name != "z" {
		t.Fatalf("observe: %v", keys)
	}
	d = w2.s.Decide(ServiceInput{Key: svcKey{Namespace: "ns", Name: "n"}, UID: "n", Manage: true, Families: []allocator.Family{allocator.IPv4}, RequireAll: true}, nil)
	if addrs(d) != "192.0.2.2" {
		t.Fatalf("got %s, want the only free address 192.0.2.2", addrs(d))
	}
}
