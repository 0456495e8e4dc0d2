// Package v1alpha1 holds the bgplb.io/v1alpha1 API: address pools, the
// allocations made from them, BGP peers, advertisements and per-node BGP status.
//
// +kubebuilder:object:generate=true
// +groupName=bgplb.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of these kinds.
	GroupVersion = schema.GroupVersion{Group: "bgplb.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Well-known names shared by the controller, the speaker and users.
const (
	// LoadBalancerClass is the spec.loadBalancerClass bgplb handles.
	LoadBalancerClass = "bgplb.io/bgp"

	// AnnotationLoadBalancerIPs requests specific addresses: a comma
	// separated list with at most one address per family.
	AnnotationLoadBalancerIPs = "bgplb.io/load-balancer-ips"
	// AnnotationIPPool names the pool to allocate from.
	AnnotationIPPool = "bgplb.io/ip-pool"
	// AnnotationSharingKey lets Services with the same key share an address.
	AnnotationSharingKey = "bgplb.io/sharing-key"
	// AnnotationSharingNamespaces lists the other namespaces whose Services
	// may share this Service's address (comma separated).
	AnnotationSharingNamespaces = "bgplb.io/sharing-namespaces"

	// InstallNamespace is where bgplb runs and where BGP password Secrets live.
	InstallNamespace = "bgplb-system"
)
