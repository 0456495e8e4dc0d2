package l2mode

import (
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestStaleL2(t *testing.T) {
	withCond := func(name string) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		s.Status.Conditions = []metav1.Condition{{Type: ConditionL2Announced, Status: metav1.ConditionTrue}}
		return s
	}
	key := func(n string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: n} }
	plain := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "plain"}}
	svcs := map[types.NamespacedName]*corev1.Service{
		key("announced"): withCond("announced"), // still announced: keeps it
		key("left"):      withCond("left"),      // shows it, not announced: cleared
		key("plain"):     plain,                 // never had it
		key("gone"):      nil,                   // named by an IPAllocation, not in the cache (crashed the reconcile once)
		key("also-left"): withCond("also-left"),
	}
	announced := map[types.NamespacedName][]netip.Addr{key("announced"): {netip.MustParseAddr("198.51.100.1")}}
	got := staleL2(svcs, announced)
	if want := []types.NamespacedName{key("also-left"), key("left")}; !slices.Equal(got, want) {
		t.Fatalf("staleL2 = %v, want %v", got, want)
	}
}
