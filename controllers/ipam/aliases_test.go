package ipam

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/allocator"
)

func TestResolveAnnotations(t *testing.T) {
	const (
		ours     = v1alpha1.AnnotationLoadBalancerIPs
		mlb      = MetalLBAnnotationLoadBalancerIPs
		legacy   = MetalLBLegacyAnnotationLoadBalancerIPs
		oursPool = v1alpha1.AnnotationIPPool
		mlbPool  = MetalLBAnnotationAddressPool
		oldPool  = MetalLBLegacyAnnotationAddressPool
		oursKey  = v1alpha1.AnnotationSharingKey
		mlbKey   = MetalLBAnnotationAllowSharedIP
		oldKey   = MetalLBLegacyAnnotationAllowSharedIP
	)
	type want struct{ ips, pool, key Annotation }
	for _, tc := range []struct {
		name      string
		ann       map[string]string
		aliases   bool
		want      want
		conflicts []string // substrings, one per conflict, in order
	}{
		{name: "nothing", aliases: true},
		{name: "ours only", aliases: true, ann: map[string]string{ours: "192.0.2.1", oursPool: "gold", oursKey: "k"},
			want: want{Annotation{ours, "192.0.2.1"}, Annotation{oursPool, "gold"}, Annotation{oursKey, "k"}}},
		{name: "metallb.io only", aliases: true, ann: map[string]string{mlb: "192.0.2.1,2001:db8::1", mlbPool: "gold", mlbKey: "k"},
			want: want{Annotation{mlb, "192.0.2.1,2001:db8::1"}, Annotation{mlbPool, "gold"}, Annotation{mlbKey, "k"}}},
		{name: "metallb.universe.tf only", aliases: true, ann: map[string]string{legacy: "192.0.2.1", oldPool: "gold", oldKey: "k"},
			want: want{Annotation{legacy, "192.0.2.1"}, Annotation{oldPool, "gold"}, Annotation{oldKey, "k"}}},
		{name: "aliases off ignores MetalLB's", aliases: false, ann: map[string]string{mlb: "192.0.2.1", oldPool: "gold", mlbKey: "k"}},
		{name: "aliases off: ours still read, no conflict", aliases: false, ann: map[string]string{ours: "192.0.2.1", mlb: "192.0.2.2"},
			want: want{ips: Annotation{ours, "192.0.2.1"}}},
		{name: "metallb.io wins over the older form", aliases: true, ann: map[string]string{mlbPool: "gold", oldPool: "silver"},
			want:      want{pool: Annotation{mlbPool, "gold"}},
			conflicts: []string{`metallb.universe.tf/address-pool="silver" is ignored: metallb.io/address-pool="gold" wins`}},
		{name: "ours wins over both, each reported", aliases: true, ann: map[string]string{ours: "192.0.2.1", mlb: "192.0.2.2", legacy: "192.0.2.3"},
			want: want{ips: Annotation{ours, "192.0.2.1"}},
			conflicts: []string{`metallb.io/loadBalancerIPs="192.0.2.2" is ignored: bgplb.io/load-balancer-ips="192.0.2.1" wins`,
				`metallb.universe.tf/loadBalancerIPs="192.0.2.3" is ignored`}},
		{name: "agreeing values are no conflict (order, case, spaces)", aliases: true,
			ann:  map[string]string{ours: "192.0.2.1,2001:db8::1", mlb: " 2001:DB8:0::1 , 192.0.2.1", oursKey: "k", mlbKey: " k ", oursPool: "p", oldPool: "p"},
			want: want{Annotation{ours, "192.0.2.1,2001:db8::1"}, Annotation{oursPool, "p"}, Annotation{oursKey, "k"}}},
		{name: "sharing key disagrees", aliases: true, ann: map[string]string{oursKey: "a", mlbKey: "b"},
			want:      want{key: Annotation{oursKey, "a"}},
			conflicts: []string{`metallb.io/allow-shared-ip="b" is ignored: bgplb.io/sharing-key="a" wins`}},
		{name: "invalid alias value still conflicts as text", aliases: true, ann: map[string]string{ours: "192.0.2.1", mlb: "nope"},
			want: want{ips: Annotation{ours, "192.0.2.1"}}, conflicts: []string{`"nope" is ignored`}},
		{name: "empty alias value is taken as set", aliases: true, ann: map[string]string{mlbKey: ""},
			want: want{key: Annotation{mlbKey, ""}}},
		{name: "conflicts in fixed order: addresses, pool, key", aliases: true,
			ann:       map[string]string{oursKey: "a", mlbKey: "b", oursPool: "p", mlbPool: "q", ours: "192.0.2.1", mlb: "192.0.2.9"},
			want:      want{Annotation{ours, "192.0.2.1"}, Annotation{oursPool, "p"}, Annotation{oursKey, "a"}},
			conflicts: []string{"loadBalancerIPs", "address-pool", "allow-shared-ip"}},
		{name: "long values are clipped in messages", aliases: true, ann: map[string]string{oursKey: "a", mlbKey: strings.Repeat("x", 300)},
			want: want{key: Annotation{oursKey, "a"}}, conflicts: []string{strings.Repeat("x", 64) + `..."`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ResolveAnnotations(tc.ann, tc.aliases)
			if g := (want{got.LoadBalancerIPs, got.IPPool, got.SharingKey}); g != tc.want {
				t.Fatalf("resolved %+v, want %+v", g, tc.want)
			}
			if len(got.Conflicts) != len(tc.conflicts) {
				t.Fatalf("conflicts %q, want %d like %q", got.Conflicts, len(tc.conflicts), tc.conflicts)
			}
			for i, c := range tc.conflicts {
				if !strings.Contains(got.Conflicts[i], c) {
					t.Fatalf("conflict %d is %q, want it to contain %q", i, got.Conflicts[i], c)
				}
			}
		})
	}
}

// TestParseRequestAliases checks that a request read through an alias means
// what bgplb's own annotation means, and errors name the annotation the user set.
func TestParseRequestAliases(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name    string
		ann     map[string]string
		lbIP    string
		aliases bool
		want    Request
		err     string
	}{
		{name: "MetalLB request", aliases: true,
			ann: map[string]string{MetalLBAnnotationLoadBalancerIPs: "192.0.2.1,2001:db8::1", MetalLBAnnotationAddressPool: "gold",
				MetalLBLegacyAnnotationAllowSharedIP: "web"},
			want: Request{Addrs: map[allocator.Family]netip.Addr{allocator.IPv4: a("192.0.2.1"), allocator.IPv6: a("2001:db8::1")},
				Pool: "gold", SharingKey: "web"}},
		{name: "aliases off", aliases: false, ann: map[string]string{MetalLBAnnotationLoadBalancerIPs: "192.0.2.1", MetalLBAnnotationAddressPool: "gold"}},
		{name: "alias error names the alias", aliases: true, ann: map[string]string{MetalLBLegacyAnnotationLoadBalancerIPs: "192.0.2.1,192.0.2.2"},
			err: "metallb.universe.tf/loadBalancerIPs: 192.0.2.1 and 192.0.2.2 are both IPv4"},
		{name: "alias with spec.loadBalancerIP", aliases: true, ann: map[string]string{MetalLBAnnotationLoadBalancerIPs: "192.0.2.1"}, lbIP: "192.0.2.1",
			err: "both spec.loadBalancerIP and the metallb.io/loadBalancerIPs annotation"},
		{name: "bad alias pool", aliases: true, ann: map[string]string{MetalLBAnnotationAddressPool: "Gold!"}, err: "metallb.io/address-pool: \"Gold!\""},
		{name: "empty alias key", aliases: true, ann: map[string]string{MetalLBAnnotationAllowSharedIP: ""}, err: "metallb.io/allow-shared-ip must be 1 to 253"},
		{name: "ours wins, conflict kept", aliases: true,
			ann:  map[string]string{v1alpha1.AnnotationIPPool: "gold", MetalLBAnnotationAddressPool: "silver"},
			want: Request{Pool: "gold", AliasConflicts: []string{`metallb.io/address-pool="silver" is ignored: bgplb.io/ip-pool="gold" wins`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRequestWith(svcWith(tc.ann, tc.lbIP), tc.aliases)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Addrs) != len(tc.want.Addrs) || got.Pool != tc.want.Pool || got.SharingKey != tc.want.SharingKey ||
				!slices.Equal(got.AliasConflicts, tc.want.AliasConflicts) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for f, addr := range tc.want.Addrs {
				if got.Addrs[f] != addr {
					t.Fatalf("%s: got %v, want %v", f, got.Addrs[f], addr)
				}
			}
		})
	}
}

// TestConditionShowsAliasConflicts: the user sees in the Service's condition
// which annotation was ignored, whatever the outcome.
func TestConditionShowsAliasConflicts(t *testing.T) {
	conflict := `metallb.io/address-pool="silver" is ignored: bgplb.io/ip-pool="gold" wins`
	ok := Outcome{Manage: true, Addrs: []Assigned{{Addr: netip.MustParseAddr("192.0.2.1"), Pool: "gold"}}, AliasConflicts: []string{conflict}}
	c := ServiceCondition(ok, 1)
	if c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonAllocated || !strings.Contains(c.Message, "conflicting annotations, bgplb's own win: "+conflict) {
		t.Fatalf("condition %+v does not show the conflict", c)
	}
	failed := Outcome{Manage: true, Failure: &Failure{v1alpha1.ReasonPoolExhausted, "full"}, AliasConflicts: []string{conflict}}
	if c := ServiceCondition(failed, 1); !strings.Contains(c.Message, conflict) {
		t.Fatalf("condition %+v does not show the conflict", c)
	}
	if c := ServiceCondition(Outcome{Manage: true, Addrs: ok.Addrs}, 1); strings.Contains(c.Message, "conflicting") {
		t.Fatalf("condition %+v shows a conflict there is none of", c)
	}
}

// FuzzResolveAnnotations: any annotation values resolve without panicking;
// the winner is always bgplb's own when set, else the first alias set; an
// alias reported as a conflict is set and disagrees; aliases off reads
// nothing of MetalLB's.
func FuzzResolveAnnotations(f *testing.F) {
	f.Add("192.0.2.1", "192.0.2.1", "", "gold", "silver", "k", "", true)
	f.Add("", "2001:db8::1, 192.0.2.1", "192.0.2.1,2001:DB8::1", "", "p", "", "k", true)
	f.Add("x", "", "y", "", "", "", "", false)
	f.Add("\x00", ",,,", " , ", "Gold!", "gold", " k", "k ", true)
	f.Fuzz(func(t *testing.T, ours, mlb, legacy, pool, mlbPool, key, mlbKey string, aliases bool) {
		ann := map[string]string{}
		put := func(k, v string) {
			if v != "" {
				ann[k] = v
			}
		}
		put(v1alpha1.AnnotationLoadBalancerIPs, ours)
		put(MetalLBAnnotationLoadBalancerIPs, mlb)
		put(MetalLBLegacyAnnotationLoadBalancerIPs, legacy)
		put(v1alpha1.AnnotationIPPool, pool)
		put(MetalLBAnnotationAddressPool, mlbPool)
		put(v1alpha1.AnnotationSharingKey, key)
		put(MetalLBLegacyAnnotationAllowSharedIP, mlbKey)
		got := ResolveAnnotations(ann, aliases)
		first := func(names ...string) Annotation {
			for _, n := range names {
				if v, ok := ann[n]; ok {
					return Annotation{n, v}
				}
			}
			return Annotation{}
		}
		if !aliases {
			if len(got.Conflicts) > 0 {
				t.Fatalf("aliases off but conflicts %q", got.Conflicts)
			}
			for _, g := range []Annotation{got.LoadBalancerIPs, got.IPPool, got.SharingKey} {
				if g.Set() && strings.HasPrefix(g.Name, "metallb") {
					t.Fatalf("aliases off but %s read", g.Name)
				}
			}
			return
		}
		if w := first(v1alpha1.AnnotationLoadBalancerIPs, MetalLBAnnotationLoadBalancerIPs, MetalLBLegacyAnnotationLoadBalancerIPs); got.LoadBalancerIPs != w {
			t.Fatalf("addresses from %+v, want %+v", got.LoadBalancerIPs, w)
		}
		if w := first(v1alpha1.AnnotationIPPool, MetalLBAnnotationAddressPool); got.IPPool != w {
			t.Fatalf("pool from %+v, want %+v", got.IPPool, w)
		}
		if w := first(v1alpha1.AnnotationSharingKey, MetalLBLegacyAnnotationAllowSharedIP); got.SharingKey != w {
			t.Fatalf("key from %+v, want %+v", got.SharingKey, w)
		}
		if len(got.Conflicts) > 4 {
			t.Fatalf("%d conflicts from 4 aliases", len(got.Conflicts))
		}
		// The request parser must not panic on whatever wins either.
		_, _ = ParseRequestWith(svcWith(ann, ""), aliases)
	})
}
