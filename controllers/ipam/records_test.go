package ipam

import (
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// allocObj builds an IPAllocation as another controller would have written it.
func allocObj(addr, uid, rv string, svcs ...string) *v1alpha1.IPAllocation {
	a := &v1alpha1.IPAllocation{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.AllocationName(addr), UID: types.UID(uid), ResourceVersion: rv, Generation: 1},
		Spec:       v1alpha1.IPAllocationSpec{Address: addr, Pool: "p"},
	}
	for _, n := range svcs {
		a.Spec.Services = append(a.Spec.Services, v1alpha1.ServiceReference{Namespace: "ns", Name: n, UID: types.UID("uid-" + n)})
	}
	return a
}

func names(keys []svcKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.Name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// The bug two controllers at once hit: another controller's object for an
// address this one has just proposed (its create not done yet) must not be
// taken as our own write, or the next write overwrites the other's holder.
func TestObserveForeignObjectForProposedAddress(t *testing.T) {
	w := newWorld(t, mkPool("p", 0, "192.0.2.0/30"))
	d := w.s.Decide(w.input("a"), w.lookup)
	if addrs(d) != "192.0.2.0" {
		t.Fatalf("first pick %s", addrs(d))
	}
	rec := d.Acquire[0]
	keys := w.s.Observe(allocObj("192.0.2.0", "other", "7", "b"))
	if got := names(keys); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("reconcile %v, want a (lost it) and b (holds it)", got)
	}
	if got := w.holders("192.0.2.0"); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("holders %v, want the object's", got)
	}
	if wr := w.s.snapshot(rec); !wr.upToDate || wr.rv != "7" {
		t.Fatalf("record should say what the object says: %+v", wr)
	}
	if w.s.holdsAll(d.Acquire, svcKey{Namespace: "ns", Name: "a"}, "uid-a") {
		t.Fatal("a still holds the address after another controller took it")
	}
	// Our own create's event (the same holders) is taken as written.
	d = w.s.Decide(w.input("a"), w.lookup)
	if addrs(d) != "192.0.2.1" {
		t.Fatalf("after losing: %s", addrs(d))
	}
	if keys := w.s.Observe(allocObj("192.0.2.1", "mine", "8", "a")); keys != nil {
		t.Fatalf("own object: reconcile %v", keys)
	}
	if wr := w.s.snapshot(d.Acquire[0]); !wr.upToDate || wr.uid != "mine" {
		t.Fatalf("own object not taken as written: %+v", wr)
	}
}

func TestRefresh(t *testing.T) {
	for _, tc := range []struct {
		name      string
		obj       *v1alpha1.IPAllocation // nil: not found
		lost      bool
		holders   []string
		reconcile []string
		exists    bool
	}{
		{"same holders", allocObj("192.0.2.0", "u", "5", "a"), false, []string{"a"}, nil, true},
		{"another Service", allocObj("192.0.2.0", "u", "5", "b"), true, []string{"b"}, []string{"a", "b"}, true},
		{"someone joined", allocObj("192.0.2.0", "u", "5", "a", "c"), false, []string{"a", "c"}, []string{"a", "c"}, true},
		{"deleted", nil, false, []string{"a"}, []string{"a"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, mkPool("p", 0, "192.0.2.0/30"))
			d := w.s.Decide(w.input("a"), w.lookup)
			keys, lost := w.s.refresh(d.Acquire[0], tc.obj)
			if lost != tc.lost || !slices.Equal(names(keys), tc.reconcile) {
				t.Fatalf("lost %v reconcile %v, want %v %v", lost, names(keys), tc.lost, tc.reconcile)
			}
			if got := w.holders("192.0.2.0"); !slices.Equal(got, tc.holders) {
				t.Fatalf("holders %v, want %v", got, tc.holders)
			}
			if wr := w.s.snapshot(d.Acquire[0]); wr.exists != tc.exists {
				t.Fatalf("exists %v", wr.exists)
			}
		})
	}
}

// A Service whose status shows an address memory knows nothing of, while it
// holds another in memory (two controllers each locked one for it and the
// other wrote the status first): the shown address wins.
func TestShownAddressWinsOverMemory(t *testing.T) {
	w := newWorld(t, mkPool("p", 0, "192.0.2.0/29"))
	w.expect(w.apply("a"), "192.0.2.0", "")
	d := w.apply("a", withIngress("192.0.2.3"))
	w.expect(d, "192.0.2.3", "")
	if len(d.Released) != 1 || d.Released[0].String() != "192.0.2.0" {
		t.Fatalf("released %v, want the address memory had", d.Released)
	}
}

// A status address memory gives to another Service is read from the API
// before anything is decided.
func TestVerifyBeforeOverwritingStatus(t *testing.T) {
	w := newWorld(t, mkPool("p", 0, "192.0.2.0/29"))
	w.expect(w.apply("b"), "192.0.2.0", "")
	in := w.input("a")
	in.Ingress = append(in.Ingress, mustAddr("192.0.2.0"))
	d := w.s.Decide(in, w.lookup)
	if len(d.Verify) != 1 || d.Verify[0].String() != "192.0.2.0" || len(d.Acquire) != 0 {
		t.Fatalf("decision %+v, want only Verify 192.0.2.0", d)
	}
	// The API says the object names a: memory takes it, a keeps its address.
	rec := w.s.record(mustAddr("192.0.2.0"))
	if _, lost := w.s.refresh(rec, allocObj("192.0.2.0", "u", "9", "a")); !lost {
		t.Fatal("b should have lost the record")
	}
	in.Verified = true
	d = w.s.Decide(in, w.lookup)
	if addrs(d) != "192.0.2.0" {
		t.Fatalf("a got %s, want its status address", addrs(d))
	}
}

// input registers a plain Service and returns what a decision for it reads.
func (w *world) input(name string) ServiceInput {
	k := svcKey{Namespace: "ns", Name: name}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: ptr.To(v1alpha1.LoadBalancerClass)},
	}
	withPorts(80)(svc)
	w.svcs[k] = svc
	in := ServiceInput{Key: k, Manage: true, UID: svc.UID}
	in.Families, in.RequireAll = FamilyNeeds(svc)
	in.Req, in.ReqErr = ParseRequest(svc)
	in.Share = ShareInfoOf(svc, in.Req)
	return in
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// A release whose status write failed is taken back when the status (now
// written by another controller) shows that address.
func TestUnwrittenReleaseTakenBackWhenShown(t *testing.T) {
	w := newWorld(t, mkPool("p", 0, "192.0.2.0/29"))
	in := w.input("a")
	d := w.s.Decide(in, w.lookup) // .0, as this controller proposes
	w.s.wrote(d.Acquire[0], allocObj("192.0.2.0", "u0", "1", "a"))
	w.s.Observe(allocObj("192.0.2.3", "u3", "2", "a")) // another controller's lock for a
	in.Ingress = []netip.Addr{mustAddr("192.0.2.0")}
	d = w.s.Decide(in, w.lookup) // status .0 (cache): keeps .0, releases .3 ...
	if addrs(d) != "192.0.2.0" || len(d.Released) != 1 {
		t.Fatalf("first: %s released %v", addrs(d), d.Released)
	}
	// ... but the status write fails: the other controller wrote .3.
	in.Ingress = []netip.Addr{mustAddr("192.0.2.3")}
	d = w.s.Decide(in, w.lookup)
	if addrs(d) != "192.0.2.3" {
		t.Fatalf("after the other controller showed .3: %s, want .3 (the status wins)", addrs(d))
	}
}

// The duplicate two controllers produced under load: the status shows an
// address whose record here names nobody (this controller is releasing it
// from another Service, and has not seen the other controller give it to
// this one). Deciding from memory would replace the shown address while the
// other controller, agreeing with the status, releases the replacement; it
// is read from the API first, and the status wins.
func TestVerifyShownAddressNobodyHoldsInMemory(t *testing.T) {
	w := newWorld(t, mkPool("p", 0, "192.0.2.0/29"))
	w.expect(w.apply("d"), "192.0.2.0", "")
	in := w.input("a")
	d := w.s.Decide(in, w.lookup)
	if addrs(d) != "192.0.2.1" {
		t.Fatalf("a got %s", addrs(d))
	}
	// d moves on: memory releases .0 (the object is not written yet).
	w.s.mu.Lock()
	w.s.releaseLocked(w.s.recs[mustAddr("192.0.2.0")], svcKey{Namespace: "ns", Name: "d"})
	w.s.mu.Unlock()
	// Another controller gave .0 to a, and a's status shows it.
	in.Ingress = []netip.Addr{mustAddr("192.0.2.0")}
	d = w.s.Decide(in, w.lookup)
	if len(d.Verify) != 1 || d.Verify[0].String() != "192.0.2.0" || len(d.Acquire) != 0 {
		t.Fatalf("decision %+v, want only Verify 192.0.2.0", d)
	}
	rec := w.s.record(mustAddr("192.0.2.0"))
	w.s.refresh(rec, allocObj("192.0.2.0", "u", "9", "a"))
	in.Verified = true
	d = w.s.Decide(in, w.lookup)
	if addrs(d) != "192.0.2.0" || len(d.Released) != 1 || d.Released[0].String() != "192.0.2.1" {
		t.Fatalf("a got %s released %v, want its status address .0 and .1 released", addrs(d), d.Released)
	}
}

// A Service's own release whose status write failed is not read again: the
// status still shows it, so the Service takes it back from memory.
func TestOwnUnwrittenReleaseNeedsNoVerify(t *testing.T) {
	w := newWorld(t, mkPool("p", 0, "192.0.2.0/29"))
	in := w.input("a")
	d := w.s.Decide(in, w.lookup)
	w.s.wrote(d.Acquire[0], allocObj("192.0.2.0", "u0", "1", "a"))
	w.s.mu.Lock()
	w.s.releaseLocked(w.s.recs[mustAddr("192.0.2.0")], in.Key)
	w.s.mu.Unlock()
	in.Ingress = []netip.Addr{mustAddr("192.0.2.0")}
	if d = w.s.Decide(in, w.lookup); len(d.Verify) != 0 || addrs(d) != "192.0.2.0" {
		t.Fatalf("decision %+v (%s), want .0 taken back without a read", d, addrs(d))
	}
}
