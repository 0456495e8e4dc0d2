package v1alpha1

// Condition types and reasons users see in `kubectl describe` and events.
// They are part of the API: scripts and alerts match on them, so a value
// never changes once released. docs/troubleshooting.md says what to do
// about each the user can fix.

// The Service condition bgplb maintains, and its reasons.
const (
	// ConditionAddressAllocated is the Service condition bgplb maintains.
	ConditionAddressAllocated = "bgplb.io/AddressAllocated"

	// ReasonAllocated: the Service has all the addresses it needs.
	ReasonAllocated = "Allocated"
	// ReasonAddressOutsidePool: the Service keeps an address that an edit
	// cut out of its pool; it is never handed out again.
	ReasonAddressOutsidePool = "AddressOutsidePool"
	// ReasonPoolDeleted: the Service keeps an address whose IPPool was
	// deleted. The address stays with the Service until the Service
	// releases it; the deleted pool gives no new address and no sharing.
	ReasonPoolDeleted = "PoolDeleted"
	// ReasonNoMatchingPool: no pool gives this Service addresses of a family.
	ReasonNoMatchingPool = "NoMatchingPool"
	// ReasonPoolExhausted: the pools that would serve it are full.
	ReasonPoolExhausted = "PoolExhausted"
	// ReasonRequestedAddressUnavailable: the requested address is outside
	// every pool, held, or not in the named pool.
	ReasonRequestedAddressUnavailable = "RequestedAddressUnavailable"
	// ReasonInvalidRequest: the annotations or spec.loadBalancerIP are invalid.
	ReasonInvalidRequest = "InvalidRequest"
	// ReasonSharingConflict: the address to share is held by Services it
	// cannot share with.
	ReasonSharingConflict = "SharingConflict"
	// ReasonAddressConflict: the Service carries an address (adopted from its
	// status) that another Service holds.
	ReasonAddressConflict = "AddressConflict"
	// ReasonReleased (event): a Service gave its addresses back.
	ReasonReleased = "Released"
	// ReasonAnnotationConflict (Warning event): a MetalLB annotation alias
	// disagrees with the annotation that wins (bgplb's own, or metallb.io/
	// over metallb.universe.tf/); the condition's message says which.
	ReasonAnnotationConflict = "AnnotationConflict"
)

// Condition types of an IPPool, and their reasons.
const (
	PoolReady       = "Ready"
	PoolExhausted   = "Exhausted"
	PoolOverlapping = "Overlapping"
	// PoolAddressesOutsideRanges is True while the pool holds addresses its
	// ranges no longer contain (an edit cut them out).
	PoolAddressesOutsideRanges = "AddressesOutsideRanges"

	// Ready=False reasons, in the order they are checked.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonDeleting: the pool has a deletionTimestamp but another
	// finalizer (not bgplb's) keeps it; it gives nothing new meanwhile.
	ReasonDeleting    = "Deleting"
	ReasonOverlapping = "Overlapping"
	ReasonDisabled    = "Disabled"
	// ReasonPoolReady: Ready=True, the pool gives addresses.
	ReasonPoolReady = "Ready"
	// Exhausted=True / False.
	ReasonExhausted          = "Exhausted"
	ReasonAddressesAvailable = "AddressesAvailable"
	// Overlapping=True / False.
	ReasonOverlapsOlderPool = "OverlapsOlderPool"
	ReasonNoOverlap         = "NoOverlap"
	// ReasonAddressesOutsideRanges: AddressesOutsideRanges=True.
	ReasonAddressesOutsideRanges = "AddressesOutsideRanges"
)

// Condition types of BGPNodeStatus and BGPPeer.
const (
	// ConditionReady on a BGPNodeStatus: every session of the node is
	// Established. On a BGPPeer: every node that should peer with it has
	// its session Established. (IPPool's PoolReady has the same value.)
	ConditionReady = "Ready"
	// ConditionDraining on a BGPNodeStatus: the node is excluded from load
	// balancers and withdraws (or has withdrawn) its routes.
	ConditionDraining = "Draining"
	// ConditionValid on a BGPPeer: its configuration can be completed by the
	// cluster (e.g. its password Secret exists).
	ConditionValid = "Valid"
)

// Reasons of BGPNodeStatus and BGPPeer conditions.
const (
	ReasonEstablished    = "Established"
	ReasonNotEstablished = "NotEstablished"
	// ReasonNoPeers: a node's Ready=False, no BGPPeer selects it.
	ReasonNoPeers = "NoPeers"
	// ReasonNoNodes: a peer's Ready=False, no node reports a session with it.
	ReasonNoNodes = "NoNodes"
	// ReasonInvalid: a peer's Ready=False because Valid is False.
	ReasonInvalid = "Invalid"
	// ReasonValid: a peer's Valid=True.
	ReasonValid = "Valid"
	// Draining=False / True (by phase).
	ReasonNotExcluded      = "NotExcluded"
	ReasonGracefulShutdown = "GracefulShutdown"
	ReasonWithdrawn        = "Withdrawn"
	// ReasonSpeakerStopped: the node's speaker stopped (its sessions are gone).
	ReasonSpeakerStopped = "SpeakerStopped"
)

// Reasons of configuration problems of BGPPeers and BGPAdvertisements: a
// BGPPeer's Valid=False reason, a session's lastError, and Warning events.
const (
	ReasonPasswordSecretNotFound   = "PasswordSecretNotFound"
	ReasonPasswordKeyNotFound      = "PasswordKeyNotFound"
	ReasonInvalidPeer              = "InvalidPeer"
	ReasonInvalidPassword          = "InvalidPassword"
	ReasonDuplicateAddress         = "DuplicateAddress"
	ReasonInvalidNodeSelector      = "InvalidNodeSelector"
	ReasonInvalidIPPoolSelector    = "InvalidIPPoolSelector"
	ReasonInvalidCommunity         = "InvalidCommunity"
	ReasonInvalidLargeCommunity    = "InvalidLargeCommunity"
	ReasonUnsupportedLocalPref     = "UnsupportedLocalPref"
	ReasonInvalidAggregationLength = "InvalidAggregationLength"
)

// Reasons of session events on a BGPPeer.
const (
	ReasonSessionEstablished = "SessionEstablished"
	ReasonSessionDown        = "SessionDown"
)
