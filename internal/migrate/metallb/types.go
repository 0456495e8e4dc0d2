package metallb

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The MetalLB API, as far as the conversion reads it: local types that
// mirror MetalLB v0.16's metallb.io/v1beta1 and v1beta2 kinds field by field
// (same JSON names and shapes; status and webhooks left out). They are
// local because importing go.universe.tf/metallb, although the module proxy
// serves it, raises about twenty of bgplb's own dependencies (gRPC,
// OpenTelemetry, k8s.io/utils, zap...) for six plain structs. A test in
// hack/metallbapi compares these types with MetalLB's real ones.

// IPAddressPool is metallb.io/v1beta1 IPAddressPool.
type IPAddressPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPAddressPoolSpec `json:"spec"`
}

// IPAddressPoolSpec is MetalLB's pool spec.
type IPAddressPoolSpec struct {
	Addresses     []string           `json:"addresses"`
	AutoAssign    *bool              `json:"autoAssign,omitempty"`
	AvoidBuggyIPs bool               `json:"avoidBuggyIPs,omitempty"`
	AllocateTo    *ServiceAllocation `json:"serviceAllocation,omitempty"`
}

// ServiceAllocation restricts a MetalLB pool to some Services.
type ServiceAllocation struct {
	Priority           int                    `json:"priority,omitempty"`
	Namespaces         []string               `json:"namespaces,omitempty"`
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors,omitempty"`
	ServiceSelectors   []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// BGPPeer is metallb.io/v1beta2 BGPPeer; v1beta1 objects (a subset of the
// same fields, with the same JSON shape) decode into it too.
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPPeerSpec `json:"spec,omitempty"`
}

// BGPPeerSpec is MetalLB's peer spec.
type BGPPeerSpec struct {
	MyASN                  uint32                 `json:"myASN"`
	ASN                    uint32                 `json:"peerASN,omitempty"`
	LocalASN               uint32                 `json:"localASN,omitempty"`
	DynamicASN             string                 `json:"dynamicASN,omitempty"`
	Address                string                 `json:"peerAddress,omitempty"`
	Interface              string                 `json:"interface,omitempty"`
	SrcAddress             string                 `json:"sourceAddress,omitempty"`
	Port                   uint16                 `json:"peerPort,omitempty"`
	HoldTime               *metav1.Duration       `json:"holdTime,omitempty"`
	KeepaliveTime          *metav1.Duration       `json:"keepaliveTime,omitempty"`
	ConnectTime            *metav1.Duration       `json:"connectTime,omitempty"`
	RouterID               string                 `json:"routerID,omitempty"`
	NodeSelectors          []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
	Password               string                 `json:"password,omitempty"`
	PasswordSecret         SecretReference        `json:"passwordSecret,omitempty"`
	BFDProfile             string                 `json:"bfdProfile,omitempty"`
	EnableGracefulRestart  bool                   `json:"enableGracefulRestart,omitempty"`
	EBGPMultiHop           bool                   `json:"ebgpMultiHop,omitempty"`
	VRFName                string                 `json:"vrf,omitempty"`
	DisableMP              bool                   `json:"disableMP,omitempty"`
	DualStackAddressFamily bool                   `json:"dualStackAddressFamily,omitempty"`
}

// SecretReference is core/v1 SecretReference (name and namespace).
type SecretReference struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// BGPAdvertisement is metallb.io/v1beta1 BGPAdvertisement.
type BGPAdvertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BGPAdvertisementSpec `json:"spec,omitempty"`
}

// BGPAdvertisementSpec is MetalLB's BGP advertisement spec.
type BGPAdvertisementSpec struct {
	AggregationLength      *int32                 `json:"aggregationLength,omitempty"`
	AggregationLengthV6    *int32                 `json:"aggregationLengthV6,omitempty"`
	LocalPref              uint32                 `json:"localPref,omitempty"`
	AsPathPrepend          uint8                  `json:"asPathPrepend,omitempty"`
	Communities            []string               `json:"communities,omitempty"`
	IPAddressPools         []string               `json:"ipAddressPools,omitempty"`
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`
	NodeSelectors          []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
	Peers                  []string               `json:"peers,omitempty"`
	ServiceSelectors       []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// Community is metallb.io/v1beta1 Community: named community values.
type Community struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              CommunitySpec `json:"spec,omitempty"`
}

// CommunitySpec lists community aliases.
type CommunitySpec struct {
	Communities []CommunityAlias `json:"communities,omitempty"`
}

// CommunityAlias names a community value ("65000:1" or "large:1:2:3").
type CommunityAlias struct {
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`
}

// BFDProfile is metallb.io/v1beta1 BFDProfile; intervals in milliseconds.
type BFDProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BFDProfileSpec `json:"spec,omitempty"`
}

// BFDProfileSpec is MetalLB's BFD profile spec.
type BFDProfileSpec struct {
	ReceiveInterval  *uint32 `json:"receiveInterval,omitempty"`
	TransmitInterval *uint32 `json:"transmitInterval,omitempty"`
	DetectMultiplier *uint32 `json:"detectMultiplier,omitempty"`
	EchoInterval     *uint32 `json:"echoInterval,omitempty"`
	EchoMode         *bool   `json:"echoMode,omitempty"`
	PassiveMode      *bool   `json:"passiveMode,omitempty"`
	MinimumTTL       *uint32 `json:"minimumTtl,omitempty"`
}

// L2Advertisement is metallb.io/v1beta1 L2Advertisement.
type L2Advertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              L2AdvertisementSpec `json:"spec,omitempty"`
}

// L2AdvertisementSpec is MetalLB's L2 advertisement spec.
type L2AdvertisementSpec struct {
	IPAddressPools         []string                `json:"ipAddressPools,omitempty"`
	IPAddressPoolSelectors []metav1.LabelSelector  `json:"ipAddressPoolSelectors,omitempty"`
	NodeSelectors          []metav1.LabelSelector  `json:"nodeSelectors,omitempty"`
	Interfaces             []string                `json:"interfaces,omitempty"`
	ServiceSelectors       []metav1.LabelSelector  `json:"serviceSelectors,omitempty"`
	PreferredNodeSelectors []PreferredNodeSelector `json:"preferredNodeSelectors,omitempty"`
}

// PreferredNodeSelector weighs nodes for L2 announcement.
type PreferredNodeSelector struct {
	Weight     int32                `json:"weight"`
	Preference metav1.LabelSelector `json:"preference"`
}

// Config is everything read from MetalLB: its configuration objects and
// the Secrets its peers' passwordSecret may name.
type Config struct {
	Pools             []IPAddressPool
	Peers             []BGPPeer
	BGPAdvertisements []BGPAdvertisement
	Communities       []Community
	BFDProfiles       []BFDProfile
	L2Advertisements  []L2Advertisement
	// Secrets by namespace/name.
	Secrets map[string]Secret
	// Skipped describes input documents that are not MetalLB configuration.
	Skipped []string
}

// Secret is the part of a core/v1 Secret a password is read from.
type Secret struct {
	Namespace, Name string
	Type            string
	Data            map[string][]byte
}
