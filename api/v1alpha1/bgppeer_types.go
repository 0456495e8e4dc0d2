package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretKeyReference names a key of a Secret in the install namespace
// (bgplb-system).
type SecretKeyReference struct {
	// Name of the Secret in bgplb-system.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key in the Secret's data holding the password.
	// +kubebuilder:default=password
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// GracefulRestart configures BGP graceful restart (RFC 4724) for a session.
type GracefulRestart struct {
	// Enabled advertises the graceful restart capability, so the router keeps
	// the node's routes while its speaker restarts.
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// RestartTime is how long the router should keep the routes, 1s to 4095s.
	// +kubebuilder:default="120s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('4095s')",message="restartTime must be between 1s and 4095s"
	// +optional
	RestartTime *metav1.Duration `json:"restartTime,omitempty"`
}

// BFD configures Bidirectional Forwarding Detection for a session, so a dead
// node is noticed in well under a second instead of after the hold time.
type BFD struct {
	// Enabled turns BFD on for the session.
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// MinReceiveInterval is the smallest interval between received control
	// packets the node asks for, 10ms to 60s.
	// +kubebuilder:default="300ms"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10ms') && duration(self) <= duration('60s')",message="minReceiveInterval must be between 10ms and 60s"
	// +optional
	MinReceiveInterval *metav1.Duration `json:"minReceiveInterval,omitempty"`
	// MinTransmitInterval is the smallest interval at which the node sends
	// control packets, 10ms to 60s.
	// +kubebuilder:default="300ms"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10ms') && duration(self) <= duration('60s')",message="minTransmitInterval must be between 10ms and 60s"
	// +optional
	MinTransmitInterval *metav1.Duration `json:"minTransmitInterval,omitempty"`
	// DetectMultiplier is how many missed packets declare the session down.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=255
	// +optional
	DetectMultiplier *int32 `json:"detectMultiplier,omitempty"`
}

// BGPPeerSpec describes a router the nodes open BGP sessions to.
//
// +kubebuilder:validation:XValidation:rule="!has(self.holdTime) || !has(self.keepaliveTime) || duration(self.keepaliveTime) < duration(self.holdTime)",message="keepaliveTime must be less than holdTime"
// +kubebuilder:validation:XValidation:rule="!has(self.sourceAddress) || ip(self.sourceAddress).family() == ip(self.address).family()",message="sourceAddress must be of the same IP family as address"
type BGPPeerSpec struct {
	// Address of the router.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IP address"
	Address string `json:"address"`

	// ASN of the router, 1 to 4294967294. When it equals localASN the session
	// is iBGP.
	// +kubebuilder:validation:Format=int64
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967294
	ASN int64 `json:"asn"`

	// LocalASN is the nodes' ASN on this session, 1 to 4294967294.
	// +kubebuilder:validation:Format=int64
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967294
	LocalASN int64 `json:"localASN"`

	// Port of the router's BGP server.
	// +kubebuilder:default=179
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`

	// SourceAddress is the local address the node opens the session from.
	// Defaults to the address the kernel picks for the route to the router.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IP address"
	// +optional
	SourceAddress string `json:"sourceAddress,omitempty"`

	// HoldTime proposed for the session, 3s to 65535s, rounded up to whole
	// seconds. BGP also allows 0 (no keepalives at all), but bgplb's BGP
	// engine cannot propose it, so it is refused rather than silently
	// replaced. When unset it is 90s, or 3 × keepaliveTime when keepaliveTime
	// is set and that is longer (three keepalives per hold time, as RFC 4271
	// suggests). The session uses the smaller of this and the router's hold
	// time.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('3s') && duration(self) <= duration('65535s')",message="holdTime must be between 3s and 65535s (a hold time of 0 is not supported)"
	// +optional
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// KeepaliveTime between keepalive messages, 1s to 21845s, rounded down to
	// whole seconds; it must be less than holdTime when both are set. When
	// unset it is holdTime / 3 rounded down to whole seconds, at least 1s
	// (30s when holdTime is unset too), as routers do. When the router
	// proposes a shorter hold time, the session's keepalive interval becomes a
	// third of that hold time instead.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('21845s')",message="keepaliveTime must be between 1s and 21845s"
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// ConnectRetryTime is how long to wait before retrying a failed
	// connection, 1s to 600s.
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('600s')",message="connectRetryTime must be between 1s and 600s"
	// +optional
	ConnectRetryTime *metav1.Duration `json:"connectRetryTime,omitempty"`

	// EBGPMultihop is the TTL of the session's packets for routers that are
	// not directly connected, 1 to 255. Unset means directly connected.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=255
	// +optional
	EBGPMultihop *int32 `json:"ebgpMultihop,omitempty"`

	// PasswordSecretRef names the Secret in bgplb-system holding the TCP-MD5
	// password of the session.
	// +optional
	PasswordSecretRef *SecretKeyReference `json:"passwordSecretRef,omitempty"`

	// GracefulRestart keeps routes at the router while a speaker restarts.
	// +optional
	GracefulRestart *GracefulRestart `json:"gracefulRestart,omitempty"`

	// BFD detects a dead node or link quickly.
	// +optional
	BFD *BFD `json:"bfd,omitempty"`

	// NodeSelector picks the nodes that peer with this router; all nodes when
	// unset.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`
}

// DefaultHoldTime is the hold time of a BGPPeer that sets neither holdTime
// nor keepaliveTime (RFC 4271's suggested value, and most routers' default).
const DefaultHoldTime = 90 * time.Second

// keepalivesPerHold is how many keepalive intervals fit in a derived hold
// time and how many a hold time is divided into for a derived keepalive
// interval: RFC 4271 suggests one third of the hold time.
const keepalivesPerHold = 3

// EffectiveTimers returns the hold time and keepalive interval the nodes
// propose for the session, in whole seconds. It is the one place that fills
// in what the user left unset, the way routers do:
//   - neither set: 90s and 30s;
//   - holdTime only: keepalive = holdTime / 3, at least 1s;
//   - keepaliveTime only: hold = 90s, or 3 × keepaliveTime when that is
//     longer, so a keepalive interval never ends up within a few seconds of
//     the hold time;
//   - both: as given (admission requires keepaliveTime < holdTime).
//
// BGP carries whole seconds: holdTime is rounded up and keepaliveTime down,
// so a keepalive admitted as shorter than the hold time stays shorter.
// The schema's defaulting deliberately sets neither field: a stored default
// would contradict the value the user sets for the other one.
func (s *BGPPeerSpec) EffectiveTimers() (hold, keepalive time.Duration) {
	if s.HoldTime != nil {
		hold = (s.HoldTime.Duration + time.Second - 1).Truncate(time.Second)
	}
	if s.KeepaliveTime != nil {
		keepalive = max(s.KeepaliveTime.Duration.Truncate(time.Second), time.Second)
	}
	switch {
	case s.HoldTime == nil && s.KeepaliveTime == nil:
		hold = DefaultHoldTime
		keepalive = DefaultHoldTime / keepalivesPerHold
	case s.KeepaliveTime == nil:
		keepalive = max((hold / keepalivesPerHold).Truncate(time.Second), time.Second)
	case s.HoldTime == nil:
		hold = max(DefaultHoldTime, keepalivesPerHold*keepalive)
	}
	return hold, keepalive
}

// BGPPeerStatus summarises the sessions of all nodes with this router.
type BGPPeerStatus struct {
	// Nodes is the number of nodes that should peer with this router.
	// +optional
	Nodes int32 `json:"nodes,omitempty"`
	// EstablishedNodes is the number of nodes whose session is Established.
	// +optional
	EstablishedNodes int32 `json:"establishedNodes,omitempty"`
	// Sessions is "established/nodes", for kubectl get.
	// +optional
	Sessions string `json:"sessions,omitempty"`
	// Conditions of the peer.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BGPPeer is a router that nodes open BGP sessions to and announce Service
// addresses to.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=bgppeer
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.address`
// +kubebuilder:printcolumn:name="ASN",type=integer,JSONPath=`.spec.asn`
// +kubebuilder:printcolumn:name="Local-ASN",type=integer,JSONPath=`.spec.localASN`
// +kubebuilder:printcolumn:name="Established",type=string,JSONPath=`.status.sessions`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BGPPeerSpec   `json:"spec"`
	Status BGPPeerStatus `json:"status,omitempty"`
}

// BGPPeerList is a list of BGPPeer.
//
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BGPPeer{}, &BGPPeerList{})
}
