package ownership

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

func TestQualifies(t *testing.T) {
	lb := func(class *string) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: class}}
	}
	deleting := lb(nil)
	deleting.DeletionTimestamp = &metav1.Time{}
	for _, tc := range []struct {
		name         string
		svc          *corev1.Service
		defaultClass bool
		want         bool
	}{
		{"ours", lb(ptr.To(v1alpha1.LoadBalancerClass)), true, true},
		{"ours without default class", lb(ptr.To(v1alpha1.LoadBalancerClass)), false, true},
		{"no class", lb(nil), true, true},
		{"no class, default class off", lb(nil), false, false},
		{"other class", lb(ptr.To("example.com/lb")), true, false},
		{"other class, default class off", lb(ptr.To("example.com/lb")), false, false},
		{"empty class is a class, not none", lb(ptr.To("")), true, false},
		{"class differing in case only", lb(ptr.To("BGPLB.io/bgp")), true, false},
		{"ClusterIP", &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}}, true, false},
		{"NodePort", &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort}}, true, false},
		{"ExternalName", &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}}, true, false},
		{"ClusterIP left with our class", &corev1.Service{Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, LoadBalancerClass: ptr.To(v1alpha1.LoadBalancerClass)}}, true, false},
		{"being deleted still qualifies (the callers decide what deletion means)", deleting, true, true},
		{"gone", nil, true, false},
		{"gone, default class off", nil, false, false},
	} {
		if got := Qualifies(tc.svc, tc.defaultClass); got != tc.want {
			t.Errorf("%s: Qualifies = %v, want %v", tc.name, got, tc.want)
		}
	}
}
