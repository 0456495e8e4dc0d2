package ipam

import (
	"slices"
	"strings"
	"testing"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/allocator"
)

// A deleted pool takes no address away: its holders keep them (flagged
// PoolDeleted), it gives nothing new, nobody joins its shared addresses,
// and a pool of the same name created again counts them as its own.
func TestDecidePoolDeleted(t *testing.T) {
	key := v1alpha1.AnnotationSharingKey
	p := mkPool("p", 0, "192.0.2.0/30")
	other := mkPool("q", 1, "198.51.100.0/30")
	w := newWorld(t, p)
	w.expect(w.apply("a"), "192.0.2.0", "")
	w.expect(w.apply("s1", withAnn(key, "k"), withPorts(80)), "192.0.2.1", "")
	w.expect(w.apply("named", withAnn(v1alpha1.AnnotationIPPool, "p")), "192.0.2.2", "")

	changed, retry := w.s.SetPools(BuildPoolViews([]v1alpha1.IPPool{other}))
	if !slices.Equal(changed, []string{"p", "q"}) {
		t.Fatalf("changed %v", changed)
	}
	for _, n := range []string{"a", "s1", "named"} {
		if !slices.ContainsFunc(retry, func(k svcKey) bool { return k.Name == n }) {
			t.Fatalf("holder %s not retried: %v", n, retry)
		}
	}
	for _, n := range []string{"a", "s1", "named"} {
		d := w.decide(svcKey{Namespace: "ns", Name: n})
		if len(d.Release) > 0 || len(d.Outcome.Addrs) != 1 || !d.Outcome.Addrs[0].PoolGone || d.Outcome.Failure != nil {
			t.Fatalf("%s after its pool went: %+v release %v", n, d.Outcome, d.Released)
		}
		if c := ServiceCondition(d.Outcome, 0); c.Status != "True" || c.Reason != v1alpha1.ReasonPoolDeleted ||
			!strings.Contains(c.Message, "pool p no longer exists") {
			t.Fatalf("%s condition %+v", n, c)
		}
	}
	// Nothing new from it: a new Service gets another pool's address, one
	// naming it gets nothing.
	w.expect(w.apply("new"), "198.51.100.0", "")
	d := w.apply("wants-p", withAnn(v1alpha1.AnnotationIPPool, "p"))
	w.expect(d, "", v1alpha1.ReasonNoMatchingPool)
	if !strings.Contains(d.Outcome.Failure.Message, "pool p named by") {
		t.Fatalf("message %q", d.Outcome.Failure.Message)
	}
	// No sharing joins: same key and compatible ports get a new address,
	// and asking for the shared address says why not.
	w.expect(w.apply("s2", withAnn(key, "k"), withPorts(443)), "198.51.100.1", "")
	d = w.apply("s3", withAnn(key, "k"), withPorts(8080), withAnn(v1alpha1.AnnotationLoadBalancerIPs, "192.0.2.1"))
	w.expect(d, "", v1alpha1.ReasonRequestedAddressUnavailable)
	if !strings.Contains(d.Outcome.Failure.Message, "its pool p no longer exists") {
		t.Fatalf("message %q", d.Outcome.Failure.Message)
	}
	if got := w.holders("192.0.2.1"); !slices.Equal(got, []string{"s1"}) {
		t.Fatalf("holders of the shared address %v", got)
	}

	// A holder leaving frees its address for good (no pool to return to).
	if n := w.s.HeldUnder("p"); n != 3 {
		t.Fatalf("held under the deleted pool: %d", n)
	}
	w.remove("a")
	if w.holders("192.0.2.0") != nil || w.s.HeldUnder("p") != 2 {
		t.Fatalf("released address still held (%d under p)", w.s.HeldUnder("p"))
	}

	// The same pool created again: the held addresses are its own again,
	// counted as allocated, never handed out twice; the holders are retried
	// and their condition is Allocated again.
	changed, retry = w.s.SetPools(BuildPoolViews([]v1alpha1.IPPool{p, other}))
	if !slices.Equal(changed, []string{"p"}) || !slices.ContainsFunc(retry, func(k svcKey) bool { return k.Name == "named" }) {
		t.Fatalf("recreated: changed %v retry %v", changed, retry)
	}
	if st, _ := w.s.Usage("p"); st[allocator.IPv4].Allocated.Int64() != 2 || st[allocator.IPv4].Available.Int64() != 2 {
		t.Fatalf("usage of the recreated pool: %+v", st[allocator.IPv4])
	}
	d = w.decide(svcKey{Namespace: "ns", Name: "named"})
	w.expect(d, "192.0.2.2", "")
	if c := ServiceCondition(d.Outcome, 0); c.Reason != v1alpha1.ReasonAllocated {
		t.Fatalf("condition after re-creation %+v", c)
	}
	w.expect(w.apply("b", withAnn(v1alpha1.AnnotationIPPool, "p")), "192.0.2.0", "")
	w.expect(w.apply("c", withAnn(v1alpha1.AnnotationIPPool, "p")), "192.0.2.3", "")
	w.expect(w.apply("d", withAnn(v1alpha1.AnnotationIPPool, "p")), "", v1alpha1.ReasonPoolExhausted)
}

// A pool of another name over a deleted pool's held addresses never hands
// them out: they are not available in it (their IPAllocation still names
// the deleted pool, so they are not its allocated addresses either).
func TestDecidePoolReplacedUnderAnotherName(t *testing.T) {
	w := newWorld(t, mkPool("old", 0, "192.0.2.0/31"))
	w.expect(w.apply("a"), "192.0.2.0", "")
	w.setPools(mkPool("new", 1, "192.0.2.0/31"))
	w.expect(w.apply("b"), "192.0.2.1", "")
	w.expect(w.apply("c"), "", v1alpha1.ReasonPoolExhausted)
	d := w.decide(svcKey{Namespace: "ns", Name: "a"})
	if c := ServiceCondition(d.Outcome, 0); addrs(d) != "192.0.2.0" || c.Reason != v1alpha1.ReasonPoolDeleted {
		t.Fatalf("holder of the old pool: %s %+v", addrs(d), c)
	}
	st, _ := w.s.Usage("new")
	if s := st[allocator.IPv4]; s.Total.Int64() != 2 || s.Allocated.Int64() != 1 || s.Available.Int64() != 0 {
		t.Fatalf("usage of the new pool: %+v", s)
	}
}

// A pool written by an older version carries the legacy finalizer; it is
// removed, and only it.
func TestWithoutLegacyFinalizer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    []string
		want  []string
		found bool
	}{
		{"none", nil, nil, false},
		{"only others", []string{"a.example/x"}, []string{"a.example/x"}, false},
		{"only legacy", []string{LegacyPoolFinalizer}, []string{}, true},
		{"kept in order", []string{"a.example/x", LegacyPoolFinalizer, "b.example/y"}, []string{"a.example/x", "b.example/y"}, true},
		{"twice", []string{LegacyPoolFinalizer, LegacyPoolFinalizer}, []string{}, true},
	} {
		in := slices.Clone(tc.in)
		got, found := WithoutLegacyFinalizer(in)
		if found != tc.found || !slices.Equal(got, tc.want) || !slices.Equal(in, tc.in) {
			t.Errorf("%s: got %v %v (input now %v)", tc.name, got, found, in)
		}
	}
}
