package ipam

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mkPool(name string, age int, addrs ...string) v1alpha1.IPPool {
	p := v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1,
		CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Second))}}
	for _, a := range addrs {
		p.Spec.Addresses = append(p.Spec.Addresses, v1alpha1.AddressRange(a))
	}
	return p
}

func TestBuildPoolViewsOverlap(t *testing.T) {
	views := BuildPoolViews([]v1alpha1.IPPool{
		mkPool("young", 3, "192.0.2.8/29"),         // overlaps old
		mkPool("old", 1, "192.0.2.0/28"),           // oldest: wins
		mkPool("a-same-age", 2, "198.51.100.0/30"), // same age as b: name decides
		mkPool("b-same-age", 2, "198.51.100.2-198.51.100.9"),
		mkPool("behind-loser", 4, "192.0.2.16/29"),       // overlaps only a loser: fine
		mkPool("loser-tail", 3, "192.0.2.15-192.0.2.20"), // overlaps old
		mkPool("v6", 0, "2001:db8::/64"),
		mkPool("bad", 0, "192.0.2.1/24"), // invalid: takes part in nothing
	})
	got := map[string]string{}
	for _, v := range views {
		got[v.Name] = v.OverlapsWith
	}
	want := map[string]string{"young": "old", "old": "", "a-same-age": "", "b-same-age": "a-same-age",
		"behind-loser": "", "loser-tail": "old", "v6": "", "bad": ""}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s overlaps %q, want %q", n, got[n], w)
		}
	}
	for i := 1; i < len(views); i++ {
		if views[i-1].Name >= views[i].Name {
			t.Fatalf("views not sorted by name: %s before %s", views[i-1].Name, views[i].Name)
		}
	}
	for _, v := range views {
		if v.Name == "bad" && (!strings.Contains(v.Invalid, "host bits") || v.Gives()) {
			t.Errorf("bad pool: Invalid=%q Gives=%v", v.Invalid, v.Gives())
		}
	}
}

func TestAllocatesTo(t *testing.T) {
	sel := func(k, v string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	}
	for _, tc := range []struct {
		name     string
		at       *v1alpha1.AllocateTo
		ns       string
		nsLabels labels.Set
		svc      labels.Set
		want     bool
	}{
		{"no allocateTo", nil, "x", nil, nil, true},
		{"priority only", &v1alpha1.AllocateTo{Priority: 3}, "x", nil, nil, true},
		{"namespace listed", &v1alpha1.AllocateTo{Namespaces: []string{"a", "x"}}, "x", nil, nil, true},
		{"namespace not listed", &v1alpha1.AllocateTo{Namespaces: []string{"a"}}, "x", nil, nil, false},
		{"namespace selected", &v1alpha1.AllocateTo{NamespaceSelector: sel("tier", "gold")}, "x", labels.Set{"tier": "gold"}, nil, true},
		{"list or selector", &v1alpha1.AllocateTo{Namespaces: []string{"a"}, NamespaceSelector: sel("tier", "gold")}, "a", nil, nil, true},
		{"namespace not selected", &v1alpha1.AllocateTo{NamespaceSelector: sel("tier", "gold")}, "x", labels.Set{"tier": "tin"}, nil, false},
		{"service selected", &v1alpha1.AllocateTo{ServiceSelector: sel("exp", "pub")}, "x", nil, labels.Set{"exp": "pub"}, true},
		{"namespace and service must both match", &v1alpha1.AllocateTo{Namespaces: []string{"x"}, ServiceSelector: sel("exp", "pub")}, "x", nil, nil, false},
	} {
		p := mkPool("p", 0, "192.0.2.0/30")
		p.Spec.AllocateTo = tc.at
		v := BuildPoolViews([]v1alpha1.IPPool{p})[0]
		if got := v.AllocatesTo(tc.ns, tc.nsLabels, tc.svc); got != tc.want {
			t.Errorf("%s: AllocatesTo = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCandidates(t *testing.T) {
	restricted := func(name string, prio int32, nss ...string) v1alpha1.IPPool {
		p := mkPool(name, 0, "192.0.2.0/30")
		p.Spec.AllocateTo = &v1alpha1.AllocateTo{Priority: prio, Namespaces: nss}
		return p
	}
	withSpec := func(p v1alpha1.IPPool, f func(*v1alpha1.IPPool)) v1alpha1.IPPool { f(&p); return p }
	// Distinct ranges so no pool overlaps another.
	pools := []v1alpha1.IPPool{
		mkPool("general-b", 0, "192.0.2.16/30"),
		mkPool("general-a", 0, "192.0.2.20/30"),
		withSpec(restricted("team-low", 5, "team"), func(p *v1alpha1.IPPool) { p.Spec.Addresses = []v1alpha1.AddressRange{"192.0.2.24/30"} }),
		withSpec(restricted("team-high", 50, "team"), func(p *v1alpha1.IPPool) { p.Spec.Addresses = []v1alpha1.AddressRange{"192.0.2.28/30"} }),
		withSpec(restricted("team-low-b", 5, "team"), func(p *v1alpha1.IPPool) { p.Spec.Addresses = []v1alpha1.AddressRange{"192.0.2.32/30"} }),
		withSpec(restricted("other", 0, "other"), func(p *v1alpha1.IPPool) { p.Spec.Addresses = []v1alpha1.AddressRange{"192.0.2.36/30"} }),
		withSpec(mkPool("manual", 0, "192.0.2.40/30"), func(p *v1alpha1.IPPool) { p.Spec.AutoAssign = ptr.To(false) }),
		withSpec(mkPool("off", 0, "192.0.2.44/30"), func(p *v1alpha1.IPPool) { p.Spec.Disabled = true }),
		withSpec(mkPool("going", 0, "192.0.2.48/30"), func(p *v1alpha1.IPPool) { p.DeletionTimestamp = ptr.To(metav1.Now()) }),
	}
	views := BuildPoolViews(pools)
	names := func(vs []*PoolView) string {
		var s []string
		for _, v := range vs {
			s = append(s, v.Name)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		name, named, ns string
		want            string
		reason, msg     string
	}{
		{name: "team namespace", ns: "team", want: "team-low,team-low-b,team-high,general-a,general-b"},
		{name: "other namespace", ns: "other", want: "other,general-a,general-b"},
		{name: "anyone else", ns: "x", want: "general-a,general-b"},
		{name: "named autoAssign:false", named: "manual", ns: "x", want: "manual"},
		{name: "named restricted, allowed", named: "team-high", ns: "team", want: "team-high"},
		{name: "named restricted, refused", named: "team-high", ns: "x", reason: v1alpha1.ReasonNoMatchingPool, msg: "does not allocate to this Service"},
		{name: "named disabled", named: "off", ns: "x", reason: v1alpha1.ReasonNoMatchingPool, msg: "pool off is disabled"},
		{name: "named deleting", named: "going", ns: "x", reason: v1alpha1.ReasonNoMatchingPool, msg: "pool going is being deleted"},
		{name: "named missing", named: "nope", ns: "x", reason: v1alpha1.ReasonNoMatchingPool, msg: "pool nope named by bgplb.io/ip-pool does not exist"},
	} {
		got, fail := Candidates(views, tc.named, tc.ns, nil, nil)
		if tc.reason != "" {
			if fail == nil || fail.Reason != tc.reason || !strings.Contains(fail.Message, tc.msg) {
				t.Errorf("%s: got %v, %v; want %s %q", tc.name, names(got), fail, tc.reason, tc.msg)
			}
			continue
		}
		if fail != nil || names(got) != tc.want {
			t.Errorf("%s: got %s, %v; want %s", tc.name, names(got), fail, tc.want)
		}
	}

	_, fail := Candidates(BuildPoolViews(pools[6:8]), "", "x", nil, nil)
	if fail == nil || !strings.Contains(fail.Message, "pool manual has autoAssign: false") || !strings.Contains(fail.Message, "pool off is disabled") {
		t.Errorf("no candidate: %v", fail)
	}
	if _, fail := Candidates(nil, "", "x", nil, nil); fail == nil || fail.Message != "no IPPool exists" {
		t.Errorf("no pools: %v", fail)
	}
}
