package ipam

import (
	"math/big"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/allocator"
)

func TestServiceCondition(t *testing.T) {
	a4 := Assigned{Addr: netip.MustParseAddr("192.0.2.1"), Pool: "p"}
	a6 := Assigned{Addr: netip.MustParseAddr("2001:db8::1"), Pool: "q"}
	out := Assigned{Addr: netip.MustParseAddr("192.0.2.9"), Pool: "p", Outside: true}
	// A deleted pool has no ranges: its addresses are outside too.
	gone4 := Assigned{Addr: netip.MustParseAddr("192.0.2.5"), Pool: "old", Outside: true, PoolGone: true}
	gone6 := Assigned{Addr: netip.MustParseAddr("2001:db8::5"), Pool: "old", Outside: true, PoolGone: true}
	const kept = ": the address stays with this Service until the Service releases it (deleted, no longer a LoadBalancer, or asking for another address), " +
		"and the deleted pool gives no new addresses"
	for _, tc := range []struct {
		name    string
		o       Outcome
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{"allocated", Outcome{Manage: true, Addrs: []Assigned{a4, a6}}, metav1.ConditionTrue, v1alpha1.ReasonAllocated,
			"holds 192.0.2.1 (pool p) and 2001:db8::1 (pool q)"},
		{"missing preferred family", Outcome{Manage: true, Addrs: []Assigned{a4}, Missing: []allocator.Family{allocator.IPv6}, MissingWhy: "pool full"},
			metav1.ConditionTrue, v1alpha1.ReasonAllocated, "holds 192.0.2.1 (pool p); no IPv6 address yet (pool full), added when a pool allows"},
		{"outside", Outcome{Manage: true, Addrs: []Assigned{out}}, metav1.ConditionTrue, v1alpha1.ReasonAddressOutsidePool,
			"holds 192.0.2.9 (pool p); 192.0.2.9 is no longer in pool p: the address stays with this Service and is not handed out again once released"},
		{"pool deleted", Outcome{Manage: true, Addrs: []Assigned{gone4}}, metav1.ConditionTrue, v1alpha1.ReasonPoolDeleted,
			"holds 192.0.2.5 (pool old, deleted); pool old no longer exists" + kept},
		{"pool deleted wins over outside, named once", Outcome{Manage: true, Addrs: []Assigned{gone4, out, gone6}}, metav1.ConditionTrue, v1alpha1.ReasonPoolDeleted,
			"holds 192.0.2.5 (pool old, deleted) and 192.0.2.9 (pool p) and 2001:db8::5 (pool old, deleted); pool old no longer exists" + kept},
		{"pool deleted, other family in a live pool", Outcome{Manage: true, Addrs: []Assigned{a6, gone4}}, metav1.ConditionTrue, v1alpha1.ReasonPoolDeleted,
			"holds 2001:db8::1 (pool q) and 192.0.2.5 (pool old, deleted); pool old no longer exists" + kept},
		{"failed, keeping an address of a deleted pool", Outcome{Manage: true, Addrs: []Assigned{gone4},
			Failure: &Failure{v1alpha1.ReasonNoMatchingPool, "pool new named by bgplb.io/ip-pool does not exist"}},
			metav1.ConditionFalse, v1alpha1.ReasonNoMatchingPool, "pool new named by bgplb.io/ip-pool does not exist; keeping 192.0.2.5 (pool old, deleted)"},
		{"failed", Outcome{Manage: true, Failure: &Failure{v1alpha1.ReasonPoolExhausted, "no free IPv4 address in pool(s) p"}},
			metav1.ConditionFalse, v1alpha1.ReasonPoolExhausted, "no free IPv4 address in pool(s) p"},
		{"failed, keeping", Outcome{Manage: true, Addrs: []Assigned{a4}, Failure: &Failure{v1alpha1.ReasonRequestedAddressUnavailable, "requested address 192.0.2.7 is held by a/b"}},
			metav1.ConditionFalse, v1alpha1.ReasonRequestedAddressUnavailable, "requested address 192.0.2.7 is held by a/b; keeping 192.0.2.1 (pool p)"},
	} {
		c := ServiceCondition(tc.o, 3)
		if c.Type != v1alpha1.ConditionAddressAllocated || c.Status != tc.status || c.Reason != tc.reason || c.Message != tc.message || c.ObservedGeneration != 3 {
			t.Errorf("%s: got %s/%s %q", tc.name, c.Status, c.Reason, c.Message)
		}
	}
}

func TestDesiredStatus(t *testing.T) {
	then, now := metav1.Unix(100, 0), metav1.Unix(200, 0)
	a := Assigned{Addr: netip.MustParseAddr("192.0.2.1"), Pool: "p"}
	o := Outcome{Manage: true, Addrs: []Assigned{a}}
	got := DesiredStatus(ServiceStatus{}, o, nil, 1, now)
	if len(got.Ingress) != 1 || got.Ingress[0].IP != "192.0.2.1" || *got.Ingress[0].IPMode != corev1.LoadBalancerIPModeVIP {
		t.Fatalf("ingress %+v", got.Ingress)
	}
	if !got.Condition.LastTransitionTime.Equal(&now) {
		t.Fatalf("new condition at %v, want %v", got.Condition.LastTransitionTime, now)
	}
	// Same status: the transition time stays, so nothing needs writing.
	cur := got
	cur.Condition.LastTransitionTime = then
	again := DesiredStatus(cur, o, nil, 1, now)
	if !StatusEqual(cur, again) {
		t.Fatalf("unchanged outcome changed status: %+v vs %+v", cur, again)
	}
	// A new message with the same status keeps the time too.
	o2 := Outcome{Manage: true, Addrs: []Assigned{{Addr: netip.MustParseAddr("192.0.2.2"), Pool: "p"}}}
	if d := DesiredStatus(cur, o2, nil, 1, now); !d.Condition.LastTransitionTime.Equal(&then) || StatusEqual(cur, d) {
		t.Fatalf("changed address: %+v", d)
	}
	// No longer managed: our address and condition go, others' stay.
	foreign := corev1.LoadBalancerIngress{Hostname: "lb.example.com"}
	cur.Ingress = append(cur.Ingress, foreign)
	gone := DesiredStatus(cur, Outcome{}, []netip.Addr{a.Addr}, 1, now)
	if gone.Condition != nil || len(gone.Ingress) != 1 || gone.Ingress[0].Hostname != "lb.example.com" {
		t.Fatalf("released status %+v", gone)
	}
}

func TestStatusPatch(t *testing.T) {
	vip := corev1.LoadBalancerIPModeVIP
	st := ServiceStatus{
		Ingress:   []corev1.LoadBalancerIngress{{IP: "192.0.2.1", IPMode: &vip}},
		Condition: &metav1.Condition{Type: v1alpha1.ConditionAddressAllocated, Status: "True", Reason: "Allocated", Message: "m", LastTransitionTime: metav1.Unix(0, 0).Rfc3339Copy()},
	}
	b, err := StatusPatch("42", st, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"metadata":{"resourceVersion":"42"},"status":{"conditions":[{"type":"bgplb.io/AddressAllocated","status":"True","lastTransitionTime":"1970-01-01T00:00:00Z","reason":"Allocated","message":"m"}],"loadBalancer":{"ingress":[{"ip":"192.0.2.1","ipMode":"VIP"}]}}}`
	if string(b) != want {
		t.Fatalf("patch\n%s\nwant\n%s", b, want)
	}
	b, err = StatusPatch("", ServiceStatus{}, true)
	if err != nil {
		t.Fatal(err)
	}
	want = `{"status":{"conditions":[{"$patch":"delete","type":"bgplb.io/AddressAllocated"}],"loadBalancer":{"ingress":null}}}`
	if string(b) != want {
		t.Fatalf("removal patch\n%s\nwant\n%s", b, want)
	}
}

func stats(total, alloc, avail, orphan int64) allocator.Stats {
	return allocator.Stats{Total: big.NewInt(total), Allocated: big.NewInt(alloc), Available: big.NewInt(avail), Orphaned: big.NewInt(orphan)}
}

func TestPoolStatus(t *testing.T) {
	now := metav1.Unix(100, 0)
	view := func(f func(*PoolView)) *PoolView {
		v := BuildPoolViews([]v1alpha1.IPPool{mkPool("p", 0, "192.0.2.0/30", "2001:db8::/64")})[0]
		if f != nil {
			f(v)
		}
		return v
	}
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	v6 := allocator.Stats{Total: two64, Allocated: big.NewInt(1), Available: new(big.Int).Sub(two64, big.NewInt(1)), Orphaned: big.NewInt(0)}
	conds := func(st v1alpha1.IPPoolStatus) string {
		var s []string
		for _, t := range []string{v1alpha1.PoolReady, v1alpha1.PoolExhausted, v1alpha1.PoolOverlapping, legacyPoolDeleting, v1alpha1.PoolAddressesOutsideRanges} {
			if c := meta.FindStatusCondition(st.Conditions, t); c != nil {
				s = append(s, t+"="+string(c.Status)+"/"+c.Reason)
			}
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		name  string
		in    PoolStatusInput
		conds string
	}{
		{"ready", PoolStatusInput{View: view(nil), Stats: map[allocator.Family]allocator.Stats{allocator.IPv4: stats(4, 1, 3, 0), allocator.IPv6: v6}},
			"Ready=True/Ready Exhausted=False/AddressesAvailable Overlapping=False/NoOverlap"},
		{"v4 exhausted", PoolStatusInput{View: view(nil), Stats: map[allocator.Family]allocator.Stats{allocator.IPv4: stats(4, 4, 0, 0), allocator.IPv6: v6}},
			"Ready=True/Ready Exhausted=True/Exhausted Overlapping=False/NoOverlap"},
		{"overlapping", PoolStatusInput{View: view(func(v *PoolView) { v.OverlapsWith = "old" }), Stats: map[allocator.Family]allocator.Stats{allocator.IPv4: stats(4, 0, 4, 0)}},
			"Ready=False/Overlapping Exhausted=False/AddressesAvailable Overlapping=True/OverlapsOlderPool"},
		{"disabled", PoolStatusInput{View: view(func(v *PoolView) { v.Disabled = true }), Stats: map[allocator.Family]allocator.Stats{allocator.IPv4: stats(4, 0, 4, 0)}},
			"Ready=False/Disabled Exhausted=False/AddressesAvailable Overlapping=False/NoOverlap"},
		{"deleting under another finalizer", PoolStatusInput{View: view(func(v *PoolView) { v.Deleting = true }), Stats: map[allocator.Family]allocator.Stats{allocator.IPv4: stats(4, 1, 3, 0)}},
			"Ready=False/Deleting Exhausted=False/AddressesAvailable Overlapping=False/NoOverlap"},
		{"orphans", PoolStatusInput{View: view(nil), Stats: map[allocator.Family]allocator.Stats{allocator.IPv4: stats(4, 1, 3, 2)}, Outside: []string{"192.0.2.9"}},
			"Ready=True/Ready Exhausted=False/AddressesAvailable Overlapping=False/NoOverlap AddressesOutsideRanges=True/AddressesOutsideRanges"},
	} {
		st := PoolStatus(v1alpha1.IPPoolStatus{}, tc.in, now)
		if got := conds(st); got != tc.conds {
			t.Errorf("%s: conditions\n %s\nwant\n %s", tc.name, got, tc.conds)
		}
	}

	st := PoolStatus(v1alpha1.IPPoolStatus{}, PoolStatusInput{View: view(nil),
		Stats: map[allocator.Family]allocator.Stats{allocator.IPv4: stats(4, 1, 3, 1), allocator.IPv6: v6}}, now)
	if *st.IPv4 != (v1alpha1.PoolFamilyStatus{Total: "4", Allocated: 2, Available: "3"}) ||
		*st.IPv6 != (v1alpha1.PoolFamilyStatus{Total: "18446744073709551616", Allocated: 1, Available: "18446744073709551615"}) ||
		st.Allocated != 3 || st.Available != "18446744073709551618" {
		t.Fatalf("counts: %+v %+v %d %s", *st.IPv4, *st.IPv6, st.Allocated, st.Available)
	}
	// Recomputing from the written status changes nothing (no write).
	if again := PoolStatus(st, PoolStatusInput{View: view(nil),
		Stats: map[allocator.Family]allocator.Stats{allocator.IPv4: stats(4, 1, 3, 1), allocator.IPv6: v6}}, metav1.Unix(500, 0)); !PoolStatusEqual(st, again) {
		t.Fatalf("status not stable:\n%+v\n%+v", st, again)
	}
	// The Deleting condition older versions wrote is dropped; others stay.
	legacy := v1alpha1.IPPoolStatus{Conditions: []metav1.Condition{
		{Type: legacyPoolDeleting, Status: metav1.ConditionFalse, Reason: "NotDeleting", LastTransitionTime: now},
		{Type: "example.com/Audited", Status: metav1.ConditionTrue, Reason: "Audited", LastTransitionTime: now},
	}}
	got := PoolStatus(legacy, PoolStatusInput{View: view(nil), Stats: map[allocator.Family]allocator.Stats{allocator.IPv4: stats(4, 1, 3, 0)}}, now)
	if meta.FindStatusCondition(got.Conditions, legacyPoolDeleting) != nil || meta.FindStatusCondition(got.Conditions, "example.com/Audited") == nil {
		t.Fatalf("legacy condition: %+v", got.Conditions)
	}
}
