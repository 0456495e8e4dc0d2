package main

import (
	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// Each subcommand's scheme registers only the API groups whose kinds it
// reads, writes or records events about, not client-go's scheme of every
// built-in group: a scheme of ~60 groups costs every speaker (one per
// node) its maps of types and defaulters for kinds it never sees. A kind
// missing here fails loudly: the cache, the client and the event recorder
// all return "no kind is registered" (TestSchemes lists what each needs).
//
// Leader election, the metrics server's authentication and the events
// client use typed clientsets, which carry client-go's own scheme.

// speakerScheme: Nodes, Services, Secrets (BGP passwords) and
// EndpointSlices, bgplb's kinds, and frr-k8s's for the frr-k8s backend and
// for the cleanup a GoBGP speaker does after it.
func speakerScheme() *runtime.Scheme {
	return newScheme(corev1.AddToScheme, discoveryv1.AddToScheme, v1alpha1.AddToScheme, frrv1beta1.AddToScheme)
}

// controllerScheme: Services, Namespaces and Secrets, and bgplb's kinds.
func controllerScheme() *runtime.Scheme {
	return newScheme(corev1.AddToScheme, v1alpha1.AddToScheme)
}

func newScheme(groups ...func(*runtime.Scheme) error) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range groups {
		utilruntime.Must(add(s))
	}
	return s
}
