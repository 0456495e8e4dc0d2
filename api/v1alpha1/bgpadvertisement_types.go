package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Community is a BGP standard community: "AA:NN" with both halves 0 to 65535,
// or a well-known name: no-export, no-advertise, no-export-subconfed,
// no-peer, blackhole, graceful-shutdown, accept-own, llgr-stale, no-llgr.
//
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{1,5}:[0-9]{1,5}$') || self in ['no-export', 'no-advertise', 'no-export-subconfed', 'no-peer', 'blackhole', 'graceful-shutdown', 'accept-own', 'llgr-stale', 'no-llgr']",message="must be AA:NN or a well-known community name (no-export, no-advertise, no-export-subconfed, no-peer, blackhole, graceful-shutdown, accept-own, llgr-stale, no-llgr)"
// +kubebuilder:validation:XValidation:rule="!self.matches('^[0-9]{1,5}:[0-9]{1,5}$') || self.split(':').all(p, int(p) <= 65535)",message="both halves of AA:NN must be between 0 and 65535"
type Community string

// LargeCommunity is a BGP large community (RFC 8092): "A:B:C", each part 0
// to 4294967295.
//
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$')",message="must be A:B:C with three decimal numbers"
// +kubebuilder:validation:XValidation:rule="!self.matches('^[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') || self.split(':').all(p, int(p) <= 4294967295)",message="each part of A:B:C must be between 0 and 4294967295"
type LargeCommunity string

// BGPAdvertisementSpec says which addresses are announced, to which peers,
// from which nodes and with which attributes.
type BGPAdvertisementSpec struct {
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

	// Peers are the BGPPeer names to announce to; all peers when empty.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	// +optional
	Peers []string `json:"peers,omitempty"`

	// NodeSelector picks the nodes that announce; all nodes when unset.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// Communities attached to the announced routes.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	Communities []Community `json:"communities,omitempty"`

	// LargeCommunities attached to the announced routes.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	LargeCommunities []LargeCommunity `json:"largeCommunities,omitempty"`

	// LocalPref sets LOCAL_PREF on routes sent to iBGP peers, 1 to
	// 4294967295; eBGP peers never receive it.
	// +kubebuilder:validation:Format=int64
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	LocalPref *int64 `json:"localPref,omitempty"`

	// AggregationLength is the prefix length IPv4 addresses are announced
	// with, 0 to 32. Shorter lengths announce the covering prefix instead of
	// each /32.
	// +kubebuilder:default=32
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=32
	// +optional
	AggregationLength *int32 `json:"aggregationLength,omitempty"`

	// AggregationLengthV6 is the prefix length IPv6 addresses are announced
	// with, 0 to 128.
	// +kubebuilder:default=128
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=128
	// +optional
	AggregationLengthV6 *int32 `json:"aggregationLengthV6,omitempty"`
}

// BGPAdvertisement announces the addresses of some pools to some peers.
// Addresses of pools no advertisement selects are allocated but not announced.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=bgpadv
// +kubebuilder:printcolumn:name="Pools",type=string,JSONPath=`.spec.ipPools`
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.spec.peers`
// +kubebuilder:printcolumn:name="Communities",type=string,JSONPath=`.spec.communities`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPAdvertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BGPAdvertisementSpec   `json:"spec,omitempty"`
	Status BGPAdvertisementStatus `json:"status,omitempty"`
}

// BGPAdvertisementStatus reports problems only the cluster can judge, such
// as references to pools or peers that do not exist.
type BGPAdvertisementStatus struct {
	// Conditions of the advertisement.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BGPAdvertisementList is a list of BGPAdvertisement.
//
// +kubebuilder:object:root=true
type BGPAdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPAdvertisement `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BGPAdvertisement{}, &BGPAdvertisementList{})
}
