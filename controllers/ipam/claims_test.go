package ipam

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// TestClaimsProtectShownAddresses: at start, Services showing addresses
// (left by MetalLB) keep them whatever order the first decisions run in:
// a pending Service decided first gets a free address, not a shown one;
// a request for a shown address waits; Services sharing one all keep it;
// a shown address its Service does not take goes back to the pool.
func TestClaimsProtectShownAddresses(t *testing.T) {
	shownSvc := func(name string, ips ...string) corev1.Service {
		svc := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: ptr.To(v1alpha1.LoadBalancerClass)}}
		withIngress(ips...)(&svc)
		return svc
	}
	notOurs := shownSvc("other-class", "192.0.2.3")
	notOurs.Spec.LoadBalancerClass = ptr.To("example.com/lb")
	shown := ShownBy([]corev1.Service{shownSvc("old", "192.0.2.0"), shownSvc("share-a", "192.0.2.1"), shownSvc("share-b", "192.0.2.1"),
		shownSvc("gone", "192.0.2.2"), notOurs}, true)
	if len(shown) != 4 {
		t.Fatalf("ShownBy kept %d Services, want 4 (not the other class)", len(shown))
	}
	w := &world{t: t, s: NewState(), svcs: map[svcKey]*corev1.Service{}}
	if _, n := w.s.BuildClaiming([]v1alpha1.IPPool{mkPool("p", 0, "192.0.2.0/29")}, nil, shown); n != 3 {
		t.Fatalf("claimed %d addresses, want 3", n)
	}
	// Decided before any of the Services that show addresses.
	if d := w.apply("new"); addrs(d) != "192.0.2.3" {
		t.Fatalf("new Service got %s, want the first address nobody shows, 192.0.2.3", addrs(d))
	}
	if d := w.apply("wants-shown", withAnn(MetalLBAnnotationLoadBalancerIPs, "192.0.2.0")); d.Outcome.Failure == nil ||
		d.Outcome.Failure.Reason != v1alpha1.ReasonRequestedAddressUnavailable {
		t.Fatalf("a request for an address another Service shows was granted: %+v", d.Outcome)
	}
	if d := w.apply("share-b", withIngress("192.0.2.1"), withAnn(MetalLBAnnotationAllowSharedIP, "k"), withPorts(443)); addrs(d) != "192.0.2.1" {
		t.Fatalf("share-b got %s, want its 192.0.2.1", addrs(d))
	}
	if d := w.apply("share-a", withIngress("192.0.2.1"), withAnn(MetalLBAnnotationAllowSharedIP, "k")); addrs(d) != "192.0.2.1" {
		t.Fatalf("share-a got %s, want the shared 192.0.2.1", addrs(d))
	}
	if d := w.apply("old", withIngress("192.0.2.0")); addrs(d) != "192.0.2.0" {
		t.Fatalf("old got %s, want its 192.0.2.0", addrs(d))
	}
	// "gone" was deleted before it was decided: its address is free again.
	w.remove("gone")
	if d := w.apply("later"); addrs(d) != "192.0.2.2" {
		t.Fatalf("later got %s, want the released claim 192.0.2.2", addrs(d))
	}
}
