package ipam

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/allocator"
)

func TestParseLoadBalancerIPs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "192.0.2.10", want: []string{"192.0.2.10"}},
		{in: " 192.0.2.10 , 2001:DB8::0:10 ", want: []string{"192.0.2.10", "2001:db8::10"}},
		{in: "2001:db8::10,192.0.2.10", want: []string{"2001:db8::10", "192.0.2.10"}},
		{in: "", err: "is empty"},
		{in: "  ", err: "is empty"},
		{in: "192.0.2.10,", err: "empty address"},
		{in: "192.0.2.10,192.0.2.11", err: "both IPv4"},
		{in: "2001:db8::1,2001:db8::2", err: "both IPv6"},
		{in: "192.0.2.1,2001:db8::1,192.0.2.2", err: "lists 3 addresses"},
		{in: "192.0.2.256", err: "not an IP address"},
		{in: "192.0.2.0/24", err: "not an IP address"},
		{in: "fe80::1%eth0", err: "zone"},
		{in: "::ffff:192.0.2.1", err: "write the IPv4 form 192.0.2.1"},
		{in: "0.0.0.0", err: "cannot be a Service address"},
		{in: "::1", err: "cannot be a Service address"},
		{in: "224.0.0.1", err: "cannot be a Service address"},
		{in: "fe80::1", err: "cannot be a Service address"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLoadBalancerIPs(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				if !strings.Contains(err.Error(), v1alpha1.AnnotationLoadBalancerIPs) {
					t.Fatalf("error %q does not name the annotation", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, a := range got {
				s = append(s, a.String())
			}
			if !slices.Equal(s, tc.want) {
				t.Fatalf("got %v, want %v", s, tc.want)
			}
		})
	}
}

func TestParseSharingNamespaces(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "", want: nil},
		{in: "b, a ,b", want: []string{"a", "b"}},
		{in: "team-a", want: []string{"team-a"}},
		{in: "a,,b", err: "empty entry"},
		{in: "Team-A", err: "not a namespace name"},
		{in: "a_b", err: "not a namespace name"},
		{in: strings.Repeat("a,", 70) + "a", err: "at most 64"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSharingNamespaces(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func svcWith(ann map[string]string, lbIP string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", Annotations: ann},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: lbIP},
	}
}

func TestParseRequest(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name string
		ann  map[string]string
		lbIP string
		want Request
		err  string
	}{
		{name: "nothing", want: Request{}},
		{name: "annotation", ann: map[string]string{v1alpha1.AnnotationLoadBalancerIPs: "192.0.2.1,2001:db8::1"},
			want: Request{Addrs: map[allocator.Family]netip.Addr{allocator.IPv4: a("192.0.2.1"), allocator.IPv6: a("2001:db8::1")}}},
		{name: "loadBalancerIP", lbIP: "2001:db8::7", want: Request{Addrs: map[allocator.Family]netip.Addr{allocator.IPv6: a("2001:db8::7")}}},
		{name: "both", ann: map[string]string{v1alpha1.AnnotationLoadBalancerIPs: "192.0.2.1"}, lbIP: "192.0.2.1", err: "both spec.loadBalancerIP"},
		{name: "bad loadBalancerIP", lbIP: "nope", err: "spec.loadBalancerIP"},
		{name: "pool", ann: map[string]string{v1alpha1.AnnotationIPPool: " gold "}, want: Request{Pool: "gold"}},
		{name: "bad pool", ann: map[string]string{v1alpha1.AnnotationIPPool: "Gold!"}, err: "not a pool name"},
		{name: "sharing", ann: map[string]string{v1alpha1.AnnotationSharingKey: "k", v1alpha1.AnnotationSharingNamespaces: "b,a"},
			want: Request{SharingKey: "k", SharingNamespaces: []string{"a", "b"}}},
		{name: "empty key", ann: map[string]string{v1alpha1.AnnotationSharingKey: " "}, err: "1 to 253"},
		{name: "namespaces without key", ann: map[string]string{v1alpha1.AnnotationSharingNamespaces: "a"}, err: "needs bgplb.io/sharing-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRequest(svcWith(tc.ann, tc.lbIP))
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
				!slices.Equal(got.SharingNamespaces, tc.want.SharingNamespaces) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for f, addr := range tc.want.Addrs {
				if got.Addrs[f] != addr {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
			}
		})
	}
}

// FuzzParseLoadBalancerIPs checks that the annotation parser never panics,
// and that what it accepts is a valid request that survives a round trip.
func FuzzParseLoadBalancerIPs(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "192.0.2.1,2001:db8::1", " 2001:DB8::1 ", ",", "1.2.3.4,,", "::ffff:1.2.3.4",
		"fe80::1%eth0", "192.0.2.1,192.0.2.2", "0.0.0.0", "2001:db8::1,192.0.2.1,x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addrs, err := ParseLoadBalancerIPs(s)
		if err != nil {
			if addrs != nil {
				t.Fatalf("addresses %v returned with error %v", addrs, err)
			}
			return
		}
		if len(addrs) == 0 || len(addrs) > 2 {
			t.Fatalf("%q: %d addresses accepted", s, len(addrs))
		}
		if len(addrs) == 2 && allocator.FamilyOf(addrs[0]) == allocator.FamilyOf(addrs[1]) {
			t.Fatalf("%q: two addresses of one family accepted", s)
		}
		var parts []string
		for _, a := range addrs {
			if !a.IsValid() || a.Zone() != "" || a.Is4In6() || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() {
				t.Fatalf("%q: unusable address %v accepted", s, a)
			}
			parts = append(parts, a.String())
		}
		again, err := ParseLoadBalancerIPs(strings.Join(parts, ","))
		if err != nil || !slices.Equal(again, addrs) {
			t.Fatalf("%q: round trip gave %v, %v", s, again, err)
		}
	})
}

// FuzzParseSharingNamespaces checks the sharing-namespaces parser: no
// panic, and an accepted list is sorted, unique namespace names.
func FuzzParseSharingNamespaces(f *testing.F) {
	for _, s := range []string{"", "a", "b,a,b", " a , b ", "a,,b", "A", "a_b", strings.Repeat("x,", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		nss, err := ParseSharingNamespaces(s)
		if err != nil {
			return
		}
		if !slices.IsSorted(nss) || len(slices.Compact(slices.Clone(nss))) != len(nss) {
			t.Fatalf("%q: %v not sorted and unique", s, nss)
		}
		for _, ns := range nss {
			if len(validation.IsDNS1123Label(ns)) > 0 {
				t.Fatalf("%q: invalid namespace %q accepted", s, ns)
			}
		}
		again, err := ParseSharingNamespaces(strings.Join(nss, ","))
		if err != nil || !slices.Equal(again, nss) {
			t.Fatalf("%q: round trip gave %v, %v", s, again, err)
		}
	})
}
