package speaker

import (
	"testing"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

func withPoolLabels(a *v1alpha1.IPAllocation, lbls map[string]string) *v1alpha1.IPAllocation {
	a.Spec.PoolLabels = lbls
	return a
}

// An advertisement selects an address by its pool: all pools, the pool's
// name, or ipPoolSelector against the pool's labels while the pool exists
// and against the labels its IPAllocation recorded once it is deleted
// (the regression: a deleted pool's kept addresses went unannounced).
func TestSelectsMatch(t *testing.T) {
	public := map[string]string{"tier": "public"}
	internal := map[string]string{"tier": "internal"}
	live := map[string]*v1alpha1.IPPool{"p1": pool("p1", public), "p2": pool("p2", nil)}
	for _, tc := range []struct {
		name  string
		adv   v1alpha1.BGPAdvertisement
		alloc *v1alpha1.IPAllocation
		want  bool
	}{
		{"every pool, live", adv("a"), alloc("192.0.2.1", "p1"), true},
		{"every pool, deleted", adv("a"), alloc("192.0.2.1", "gone"), true},
		{"by name, live", adv("a", pools("p1")), alloc("192.0.2.1", "p1"), true},
		{"by name, deleted", adv("a", pools("gone")), alloc("192.0.2.1", "gone"), true},
		{"by name, another pool", adv("a", pools("p2")), alloc("192.0.2.1", "p1"), false},
		{"by label, live", adv("a", poolSelector(public)), alloc("192.0.2.1", "p1"), true},
		{"by label, live pool without it", adv("a", poolSelector(public)), alloc("192.0.2.1", "p2"), false},
		{"by label, deleted pool: its recorded labels", adv("a", poolSelector(public)),
			withPoolLabels(alloc("192.0.2.1", "gone"), public), true},
		{"by label, deleted pool recorded with other labels", adv("a", poolSelector(public)),
			withPoolLabels(alloc("192.0.2.1", "gone"), internal), false},
		{"by label, deleted pool recorded without labels (made by an older version)", adv("a", poolSelector(public)),
			alloc("192.0.2.1", "gone"), false},
		{"by label, live pool wins over a stale copy", adv("a", poolSelector(public)),
			withPoolLabels(alloc("192.0.2.1", "p1"), internal), true},
		{"by label, live pool relabelled: the copy does not keep it selected", adv("a", poolSelector(internal)),
			withPoolLabels(alloc("192.0.2.1", "p1"), internal), false},
		{"by name or label: the label", adv("a", pools("other"), poolSelector(public)),
			withPoolLabels(alloc("192.0.2.1", "gone"), public), true},
		{"by name or label: the name", adv("a", pools("gone"), poolSelector(internal)),
			withPoolLabels(alloc("192.0.2.1", "gone"), public), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, prob := parseAdvertisement(&tc.adv, nil, activePeers{})
			if prob != nil || a == nil {
				t.Fatalf("parse: %v %v", a, prob)
			}
			m := matchPool(tc.alloc, live)
			if got := a.selectsMatch(m); got != tc.want {
				t.Fatalf("selects %v, want %v (match %+v)", got, tc.want, m)
			}
		})
	}
}

// The key groups addresses that every advertisement selects alike: one
// per live pool whatever the copies say; per recorded labels once the
// pool is gone; never a live pool's key for a deleted one.
func TestMatchPoolKey(t *testing.T) {
	public := map[string]string{"tier": "public", "zone": "a"}
	live := map[string]*v1alpha1.IPPool{"p1": pool("p1", public)}
	key := func(a *v1alpha1.IPAllocation) string { return matchPool(a, live).key }
	if key(alloc("192.0.2.1", "p1")) != key(withPoolLabels(alloc("192.0.2.2", "p1"), map[string]string{"x": "y"})) {
		t.Error("a live pool's addresses share one key whatever their copies say")
	}
	if key(alloc("192.0.2.1", "p1")) != "p1" {
		t.Errorf("live key %q", key(alloc("192.0.2.1", "p1")))
	}
	gone := func(lbls map[string]string) string { return key(withPoolLabels(alloc("192.0.2.1", "p0"), lbls)) }
	if gone(public) != gone(map[string]string{"zone": "a", "tier": "public"}) {
		t.Error("the same labels give the same key")
	}
	if gone(public) == gone(map[string]string{"tier": "public"}) || gone(nil) == gone(public) {
		t.Error("other labels give another key")
	}
	if gone(nil) == "p0" || gone(map[string]string{}) != gone(nil) {
		t.Errorf("a deleted pool without labels: %q", gone(nil))
	}
}
