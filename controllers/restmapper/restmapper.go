// Package restmapper gives bgplb's managers a RESTMapper that works
// before the API server answers.
package restmapper

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// New returns a RESTMapper that knows the kinds bgplb reads without asking
// the API server, and asks fallback (a discovery-based mapper) for any
// other kind.
//
// A cache asks its mapper whether each kind is namespaced when it is
// created or indexed, before the manager starts. With the discovery mapper that fails
// while the API server is unreachable, and the process exits: a controller
// that lost its lease during an API outage then restarted into
// CrashLoopBackOff and came back minutes after the API server did. With
// this mapper both binaries start, serve their health endpoints and wait
// for the API server like any client.
func New(scheme *runtime.Scheme, fallback meta.RESTMapper) meta.RESTMapper {
	static := meta.NewDefaultRESTMapper([]schema.GroupVersion{corev1.SchemeGroupVersion, discoveryv1.SchemeGroupVersion, v1alpha1.GroupVersion})
	add := func(gv schema.GroupVersion, scope meta.RESTScope, kinds ...string) {
		for _, k := range kinds {
			static.Add(gv.WithKind(k), scope)
		}
	}
	add(corev1.SchemeGroupVersion, meta.RESTScopeNamespace, "Service", "Secret", "Pod", "ConfigMap", "Endpoints", "Event")
	add(corev1.SchemeGroupVersion, meta.RESTScopeRoot, "Node", "Namespace")
	add(discoveryv1.SchemeGroupVersion, meta.RESTScopeNamespace, "EndpointSlice")
	// Every bgplb kind is cluster-scoped (DESIGN.md).
	// (The scheme also registers option and list types under the group;
	// only objects with metadata get a mapping.)
	for kind, t := range scheme.KnownTypes(v1alpha1.GroupVersion) {
		if _, ok := reflect.New(t).Interface().(metav1.Object); ok {
			add(v1alpha1.GroupVersion, meta.RESTScopeRoot, kind)
		}
	}
	return meta.FirstHitRESTMapper{MultiRESTMapper: meta.MultiRESTMapper{static, fallback}}
}
