// Package trim holds the cache transforms shared by the speaker's
// reconcilers. A speaker caches every LoadBalancer Service and every
// EndpointSlice of the cluster; keeping only the fields its decisions read
// makes its memory follow the number of those objects, not their size.
package trim

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// Meta keeps an object's identity, version and deletion mark: what the
// cache, the reconcilers' keys and optimistic writes need. Labels,
// annotations and managedFields go.
func Meta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace: m.Namespace, Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Generation: m.Generation, DeletionTimestamp: m.DeletionTimestamp,
	}
}

// Service returns the transform that keeps, of a Service, its type,
// externalTrafficPolicy and loadBalancerClass, and its status conditions of
// the given types (a reconciler that writes a condition compares with it to
// write only changes). Anything that is not a Service (a deletion
// tombstone) passes unchanged.
func Service(conditionTypes ...string) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		s, ok := obj.(*corev1.Service)
		if !ok {
			return obj, nil
		}
		out := &corev1.Service{ObjectMeta: Meta(s.ObjectMeta), Spec: corev1.ServiceSpec{
			Type:                  s.Spec.Type,
			ExternalTrafficPolicy: s.Spec.ExternalTrafficPolicy,
			LoadBalancerClass:     s.Spec.LoadBalancerClass,
		}}
		for _, t := range conditionTypes {
			if c := meta.FindStatusCondition(s.Status.Conditions, t); c != nil {
				out.Status.Conditions = append(out.Status.Conditions, *c)
			}
		}
		return out, nil
	}
}

// EndpointSlice returns the transform that keeps, of an EndpointSlice, its
// address type, its Service label and, of every endpoint, only its node and
// conditions. Its UID goes too: nothing reads a slice's UID (slices are
// found by their Service). Anything that is not an EndpointSlice passes
// unchanged.
func EndpointSlice() toolscache.TransformFunc {
	return func(obj any) (any, error) {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			return obj, nil
		}
		out := &discoveryv1.EndpointSlice{ObjectMeta: Meta(s.ObjectMeta), AddressType: s.AddressType}
		out.UID = ""
		if svc, ok := s.Labels[discoveryv1.LabelServiceName]; ok {
			out.Labels = map[string]string{discoveryv1.LabelServiceName: svc}
		}
		for _, e := range s.Endpoints {
			out.Endpoints = append(out.Endpoints, discoveryv1.Endpoint{NodeName: e.NodeName, Conditions: e.Conditions})
		}
		return out, nil
	}
}
