package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SessionState is the BGP finite state machine state of a session.
// +kubebuilder:validation:Enum=Unknown;Idle;Connect;Active;OpenSent;OpenConfirm;Established
type SessionState string

// Session states.
const (
	SessionUnknown     SessionState = "Unknown"
	SessionIdle        SessionState = "Idle"
	SessionConnect     SessionState = "Connect"
	SessionActive      SessionState = "Active"
	SessionOpenSent    SessionState = "OpenSent"
	SessionOpenConfirm SessionState = "OpenConfirm"
	SessionEstablished SessionState = "Established"
)

// BGPSessionStatus is one node's session with one BGPPeer.
type BGPSessionStatus struct {
	// Peer is the BGPPeer's name.
	Peer string `json:"peer"`
	// Address of the router.
	Address string `json:"address"`
	// State of the session.
	State SessionState `json:"state"`
	// Since is when the session entered its state.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// PrefixesSent is the number of prefixes announced on the session.
	// +optional
	PrefixesSent int32 `json:"prefixesSent,omitempty"`
	// BFDState is the BFD session state (Up, Down, Init, AdminDown), empty
	// when BFD is off.
	// +optional
	BFDState string `json:"bfdState,omitempty"`
	// LastError is the last error seen on the session, such as a
	// NOTIFICATION received or a connection failure.
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// BGPNodeStatusStatus is what one node's speaker reports.
type BGPNodeStatusStatus struct {
	// Sessions of the node, one per BGPPeer that selects it.
	// +listType=map
	// +listMapKey=peer
	// +optional
	Sessions []BGPSessionStatus `json:"sessions,omitempty"`
	// EstablishedSessions counts sessions in state Established.
	// +optional
	EstablishedSessions int32 `json:"establishedSessions,omitempty"`
	// AnnouncedPrefixes is the number of distinct prefixes the node announces.
	// +optional
	AnnouncedPrefixes int32 `json:"announcedPrefixes,omitempty"`
	// Conditions: Ready (all sessions established), Draining.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BGPNodeStatus is the BGP state of one node, named after the node, owned by
// it and written by that node's speaker.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=bgpnode
// +kubebuilder:printcolumn:name="Established",type=integer,JSONPath=`.status.establishedSessions`
// +kubebuilder:printcolumn:name="Prefixes",type=integer,JSONPath=`.status.announcedPrefixes`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPNodeStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Status BGPNodeStatusStatus `json:"status,omitempty"`
}

// BGPNodeStatusList is a list of BGPNodeStatus.
//
// +kubebuilder:object:root=true
type BGPNodeStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPNodeStatus `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BGPNodeStatus{}, &BGPNodeStatusList{})
}
