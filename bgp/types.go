package bgp

import (
	"net/netip"
	"time"

	"github.com/go-logr/logr"
)

// Options configures a Speaker.
type Options struct {
	// Logger receives the speaker's logs and, through a slog bridge, GoBGP's.
	// GoBGP's debug logs appear at V(4).
	Logger logr.Logger
	// ListenPort is the TCP port on which the speaker accepts BGP
	// connections. 0, the default, disables listening: the speaker then
	// always opens the sessions itself (docs/architecture.md#send-only-speaker).
	ListenPort int32
	// ListenAddresses restricts listening to these addresses (only with
	// ListenPort > 0). Empty means all addresses.
	ListenAddresses []netip.Addr
	// BatchSize bounds how many paths go into one GoBGP call when many paths
	// change at once, so that a bulk change does not hold GoBGP's single
	// management loop for long. 0 means 1024.
	BatchSize int
}

// State is the complete desired BGP state of one node.
type State struct {
	// ASN is the local autonomous system number (4-byte ASNs supported).
	ASN uint32
	// RouterID is the BGP identifier; it must be an IPv4 address (GoBGP
	// requires it even on IPv6-only nodes).
	RouterID netip.Addr
	// Peers are keyed by Peer.Name.
	Peers []Peer
	// Paths are keyed by Prefix.
	Paths []Path
}

// Peer is one BGP neighbor.
type Peer struct {
	// Name identifies the peer in State and Path.Peers (e.g. the BGPPeer name).
	Name string
	// Address is the neighbor's address. Its family decides which paths the
	// session carries: IPv4 prefixes go to IPv4 peers, IPv6 prefixes to IPv6
	// peers (over MP-BGP); other combinations are skipped.
	Address netip.Addr
	// ASN is the neighbor's ASN. Equal to the local ASN means iBGP.
	ASN uint32
	// LocalASN overrides State.ASN for this session; 0 means State.ASN.
	LocalASN uint32
	// Port is the neighbor's TCP port; 0 means 179.
	Port uint16
	// SourceAddress is the local address of the session; unset lets the
	// kernel choose. It is also the next hop of the paths sent on the session.
	SourceAddress netip.Addr
	// HoldTime, KeepaliveTime and ConnectRetryTime default to 90s, hold/3
	// rounded down to whole seconds but at least 1s (30s for the default
	// hold time) and 5s. They are rounded up to whole seconds.
	HoldTime, KeepaliveTime, ConnectRetryTime time.Duration
	// EBGPMultihopTTL, when not 0, allows an eBGP neighbor that many hops
	// away. Ignored for iBGP.
	EBGPMultihopTTL uint8
	// Password enables TCP-MD5 (RFC 2385) on the session.
	Password string
	// GracefulRestart advertises the graceful restart capability (RFC 4724)
	// with this restart time (default 120s, at most 4095s), so that routers
	// keep our routes while the speaker restarts (see Speaker.Stop).
	GracefulRestart GracefulRestart
	// BFD runs GoBGP's native single-hop BFD towards the neighbor address.
	BFD BFD
	// Profiles optionally declares the attribute sets paths may use towards
	// this peer (one per BGPAdvertisement selecting the peer). Declared
	// profiles get their export statement when the peer is applied, so the
	// first and last Service of an advertisement do not touch policies.
	// Undeclared profiles used by paths work too; they cost one policy
	// change when first used and when last used. Changing Profiles never
	// resets the session.
	Profiles []Attributes
}

// GracefulRestart configures the graceful restart capability.
type GracefulRestart struct {
	Enabled     bool
	RestartTime time.Duration
}

// BFD configures BFD for a peer. Zero intervals default to 300ms and a zero
// multiplier to 3. Intervals have microsecond granularity.
type BFD struct {
	Enabled      bool
	MinRx, MinTx time.Duration
	Multiplier   uint32
}

// Path is one prefix to announce.
type Path struct {
	// Prefix is a /32 or /128 per Service address, or an aggregate. It must
	// not have host bits set.
	Prefix netip.Prefix
	// Peers says what each peer receives: peer name -> attributes. A peer
	// absent from the map does not get the path.
	Peers map[string]Attributes
}

// Attributes are the optional path attributes sent to one peer.
type Attributes struct {
	// Communities are RFC 1997 communities (see ParseCommunity).
	Communities []uint32
	// LargeCommunities are RFC 8092 large communities.
	LargeCommunities []LargeCommunity
	// LocalPref is sent to iBGP peers only (eBGP peers never see it). 0 is not
	// supported by GoBGP's policy engine and is rejected.
	LocalPref *uint32
}

// LargeCommunity is an RFC 8092 large community GlobalAdmin:LocalData1:LocalData2.
type LargeCommunity struct {
	GlobalAdmin, LocalData1, LocalData2 uint32
}

// SessionState is the BGP finite state machine state of a session.
type SessionState string

// Session states (RFC 4271 section 8).
const (
	StateIdle        SessionState = "Idle"
	StateConnect     SessionState = "Connect"
	StateActive      SessionState = "Active"
	StateOpenSent    SessionState = "OpenSent"
	StateOpenConfirm SessionState = "OpenConfirm"
	StateEstablished SessionState = "Established"
)

// BFD session states as reported in PeerStatus.BFDState.
const (
	BFDUp        = "Up"
	BFDDown      = "Down"
	BFDInit      = "Init"
	BFDAdminDown = "AdminDown"
)

// PeerStatus is the observed state of one applied peer.
type PeerStatus struct {
	Name    string
	Address netip.Addr
	State   SessionState
	// Since is when the session entered State (zero if unknown).
	Since time.Time
	// PrefixesSent is the number of applied paths the speaker announces to
	// the peer while the session is Established (0 otherwise).
	PrefixesSent int
	// BFDState is "" when BFD is disabled for the peer, otherwise one of
	// BFDUp, BFDDown, BFDInit, BFDAdminDown.
	BFDState string
	// LastError describes why the session last went down, if it did.
	LastError string
}
