package ipam

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/internal/allocator"
)

func TestFamilyNeeds(t *testing.T) {
	v4, v6 := corev1.IPv4Protocol, corev1.IPv6Protocol
	for _, tc := range []struct {
		name       string
		policy     *corev1.IPFamilyPolicy
		fams       []corev1.IPFamily
		want       []allocator.Family
		requireAll bool
	}{
		{"default", nil, nil, []allocator.Family{allocator.IPv4}, true},
		{"single v4", ptr.To(corev1.IPFamilyPolicySingleStack), []corev1.IPFamily{v4}, []allocator.Family{allocator.IPv4}, true},
		{"single v6", ptr.To(corev1.IPFamilyPolicySingleStack), []corev1.IPFamily{v6}, []allocator.Family{allocator.IPv6}, true},
		{"prefer, v6 first", ptr.To(corev1.IPFamilyPolicyPreferDualStack), []corev1.IPFamily{v6, v4}, []allocator.Family{allocator.IPv6, allocator.IPv4}, false},
		{"prefer in a single-stack cluster", ptr.To(corev1.IPFamilyPolicyPreferDualStack), []corev1.IPFamily{v4}, []allocator.Family{allocator.IPv4, allocator.IPv6}, false},
		{"require", ptr.To(corev1.IPFamilyPolicyRequireDualStack), []corev1.IPFamily{v4, v6}, []allocator.Family{allocator.IPv4, allocator.IPv6}, true},
	} {
		got, all := FamilyNeeds(&corev1.Service{Spec: corev1.ServiceSpec{IPFamilyPolicy: tc.policy, IPFamilies: tc.fams}})
		if !slices.Equal(got, tc.want) || all != tc.requireAll {
			t.Errorf("%s: FamilyNeeds = %v, %v; want %v, %v", tc.name, got, all, tc.want, tc.requireAll)
		}
	}
}

func TestCanShare(t *testing.T) {
	tcp := func(ps ...int32) []PortProto {
		var out []PortProto
		for _, p := range ps {
			out = append(out, PortProto{p, corev1.ProtocolTCP})
		}
		return out
	}
	base := func(name string, ports []PortProto) ShareInfo {
		return ShareInfo{Namespace: "a", Name: name, Key: "k", Ports: ports, Selector: map[string]string{"app": "x"}}
	}
	for _, tc := range []struct {
		name string
		a, b ShareInfo
		err  string
	}{
		{name: "disjoint ports", a: base("s1", tcp(80)), b: base("s2", tcp(443))},
		{name: "same port other protocol", a: base("s1", tcp(53)), b: func() ShareInfo {
			s := base("s2", []PortProto{{53, corev1.ProtocolUDP}})
			return s
		}()},
		{name: "overlapping ports", a: base("s1", tcp(80, 81)), b: base("s2", tcp(81, 80)), err: "both use 80/TCP, 81/TCP"},
		{name: "no key", a: base("s1", tcp(80)), b: func() ShareInfo { s := base("s2", tcp(81)); s.Key = ""; return s }(), err: "do not both set"},
		{name: "other key", a: base("s1", tcp(80)), b: func() ShareInfo { s := base("s2", tcp(81)); s.Key = "j"; return s }(), err: `has sharing key "k"`},
		{name: "traffic policy", a: base("s1", tcp(80)), b: func() ShareInfo { s := base("s2", tcp(81)); s.Local = true; return s }(), err: "externalTrafficPolicy"},
		{name: "local, same selector",
			a: func() ShareInfo { s := base("s1", tcp(80)); s.Local = true; return s }(),
			b: func() ShareInfo { s := base("s2", tcp(81)); s.Local = true; return s }()},
		{name: "local, other selector",
			a: func() ShareInfo { s := base("s1", tcp(80)); s.Local = true; return s }(),
			b: func() ShareInfo {
				s := base("s2", tcp(81))
				s.Local, s.Selector = true, map[string]string{"app": "y"}
				return s
			}(), err: "different selectors"},
		{name: "cluster, other selector", a: base("s1", tcp(80)),
			b: func() ShareInfo { s := base("s2", tcp(81)); s.Selector = nil; return s }()},
		{name: "cross namespace, one way",
			a: func() ShareInfo { s := base("s1", tcp(80)); s.Namespaces = []string{"b"}; return s }(),
			b: func() ShareInfo { s := base("s2", tcp(81)); s.Namespace = "b"; return s }(), err: "do not both list"},
		{name: "cross namespace, mutual",
			a: func() ShareInfo { s := base("s1", tcp(80)); s.Namespaces = []string{"b"}; return s }(),
			b: func() ShareInfo {
				s := base("s2", tcp(81))
				s.Namespace, s.Namespaces = "b", []string{"a", "c"}
				return s
			}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, pair := range [][2]ShareInfo{{tc.a, tc.b}, {tc.b, tc.a}} {
				err := CanShare(pair[0], pair[1])
				switch {
				case tc.err == "" && err != nil:
					t.Fatalf("CanShare: %v", err)
				case tc.err != "" && err == nil:
					t.Fatalf("CanShare allowed it, want %q", tc.err)
				case tc.err != "" && !strings.Contains(err.Error(), tc.err) && tc.name != "other key":
					t.Fatalf("error %q, want %q", err, tc.err)
				}
			}
		})
	}
}
