package main

import (
	"testing"

	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// TestSchemes checks that each subcommand's scheme knows every kind its
// controllers read, write or record events about, and no longer carries
// client-go's whole set of built-in groups.
func TestSchemes(t *testing.T) {
	tests := []struct {
		name    string
		scheme  *runtime.Scheme
		want    []client.Object
		notWant []client.Object
	}{
		{
			name:   "speaker",
			scheme: speakerScheme(),
			want: []client.Object{
				&corev1.Node{}, &corev1.Service{}, &corev1.Secret{}, &discoveryv1.EndpointSlice{},
				&v1alpha1.BGPPeer{}, &v1alpha1.BGPAdvertisement{}, &v1alpha1.BGPNodeStatus{}, &v1alpha1.IPPool{}, &v1alpha1.IPAllocation{},
				&frrv1beta1.FRRConfiguration{}, &frrv1beta1.FRRNodeState{}, &frrv1beta1.BGPSessionState{},
			},
			notWant: []client.Object{&appsv1.Deployment{}},
		},
		{
			name:   "controller",
			scheme: controllerScheme(),
			want: []client.Object{
				&corev1.Service{}, &corev1.Namespace{}, &corev1.Secret{},
				&v1alpha1.IPPool{}, &v1alpha1.IPAllocation{}, &v1alpha1.BGPPeer{}, &v1alpha1.BGPNodeStatus{},
			},
			notWant: []client.Object{&appsv1.Deployment{}, &frrv1beta1.FRRConfiguration{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, o := range tt.want {
				if _, _, err := tt.scheme.ObjectKinds(o); err != nil {
					t.Errorf("%T: %v", o, err)
				}
			}
			for _, o := range tt.notWant {
				if _, _, err := tt.scheme.ObjectKinds(o); err == nil {
					t.Errorf("%T is registered; the scheme should hold only what %s uses", o, tt.name)
				}
			}
		})
	}
}
