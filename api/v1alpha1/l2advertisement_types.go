package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InterfaceName is a Linux network interface name: 1 to 15 characters, none
// of them '/', ':' or white space, and neither "." nor "..".
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=15
// +kubebuilder:validation:XValidation:rule="self.matches('^[^/:\\\\s]+$')",message="an interface name must not contain '/', ':' or white space"
// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="an interface name must not be '.' or '..'"
type InterfaceName string

// L2AdvertisementSpec says which addresses are announced on the nodes' own
// network (ARP for IPv4, NDP for IPv6), from which nodes and on which
// interfaces.
type L2AdvertisementSpec struct {
	// IPPools whose addresses are announced, by name. With neither ipPools
	// nor ipPoolSelector, every pool's addresses are.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	// +optional
	IPPools []string `json:"ipPools,omitempty"`

	// IPPoolSelector selects pools by label, in addition to ipPools.
	// +optional
	IPPoolSelector *metav1.LabelSelector `json:"ipPoolSelector,omitempty"`

	// NodeSelector picks the nodes that may answer for the addresses; all
	// nodes when unset. One of them, the owner, answers for each address.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// Interfaces the addresses are announced on. When empty, an address is
	// announced on the interface whose subnet contains it; a node with no
	// such interface is not eligible for that address.
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	// +optional
	Interfaces []InterfaceName `json:"interfaces,omitempty"`
}

// L2Advertisement announces the addresses of some pools on the nodes' own
// network: for each address one node, its owner, answers ARP requests and
// IPv6 neighbor solicitations, and another node takes over when it fails.
// A pool may be announced by BGP and L2 at once.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=l2adv
// +kubebuilder:printcolumn:name="Pools",type=string,JSONPath=`.spec.ipPools`
// +kubebuilder:printcolumn:name="Interfaces",type=string,JSONPath=`.spec.interfaces`
// +kubebuilder:printcolumn:name="Node Selector",type=string,JSONPath=`.spec.nodeSelector`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type L2Advertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   L2AdvertisementSpec   `json:"spec,omitempty"`
	Status L2AdvertisementStatus `json:"status,omitempty"`
}

// L2AdvertisementStatus reports problems only the cluster can judge.
type L2AdvertisementStatus struct {
	// Conditions of the advertisement.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// L2AdvertisementList is a list of L2Advertisement.
//
// +kubebuilder:object:root=true
type L2AdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []L2Advertisement `json:"items"`
}

func init() {
	SchemeBuilder.Register(&L2Advertisement{}, &L2AdvertisementList{})
}
