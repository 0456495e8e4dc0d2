// Package ownership decides which Services are bgplb's. The controller
// (which gives them addresses) and the speaker (which announces them) both
// ask it, so that they can never disagree about a Service.
package ownership

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// Qualifies reports whether bgplb handles the Service: it is of type
// LoadBalancer and of class bgplb.io/bgp, or of no class when defaultClass
// (the --default-class flag of both binaries) is set. A nil Service does
// not qualify.
func Qualifies(svc *corev1.Service, defaultClass bool) bool {
	if svc == nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if svc.Spec.LoadBalancerClass == nil {
		return defaultClass
	}
	return *svc.Spec.LoadBalancerClass == v1alpha1.LoadBalancerClass
}
