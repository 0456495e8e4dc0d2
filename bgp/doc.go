// Package bgp announces Service addresses to routers from an embedded GoBGP
// v4 server. It is the only package of bgplb that imports GoBGP; no GoBGP or
// protobuf type appears in its API.
//
// # Use
//
// New returns a Speaker; Apply sets the complete desired State (ASN, router
// ID, peers, paths) and may be called as often as wanted: only differences
// reach GoBGP. UpdatePaths changes a few paths without walking the table.
// Status reports sessions; Stop(ctx, true) exits without a Cease so routers
// keep our routes (graceful restart), Stop(ctx, false) withdraws them.
//
// # Safety (docs/architecture.md#send-only-speaker, #constant-bgp-work)
//
//   - No gRPC server is started, and the BGP port is closed unless
//     Options.ListenPort is set (GoBGP's ListenPort -1).
//   - The global import policy accepts only locally originated paths and
//     rejects everything peers send: received routes stay in GoBGP's
//     per-peer Adj-RIB-In (marked rejected) and never reach the RIB, so they
//     can neither be used nor passed on.
//   - Paths are added and withdrawn by path, never by UUID; one changed
//     Service is one AddPath or DeletePath call, whatever the table size.
//
// # Per-peer attributes: why export statements per attribute profile
//
// Each path may reach each peer with its own communities, large
// communities and local preference. Two designs were possible:
//
// (a) one GoBGP server; paths carry internal tags and export statements add
// the attributes per peer; or (b) one GoBGP server per peer, each holding
// paths with exactly that peer's attributes.
//
// (b) cannot work with BFD: GoBGP's BFD server binds the wildcard UDP port
// 3784 with SO_REUSEADDR, and with two such sockets in one network namespace
// the kernel delivers every packet to the most recently bound one. Two
// BgpServers in one process were tried: the newer received all BFD packets
// (its own included), the older none, so its sessions never came up. It
// would also multiply goroutines, timers and memory by the number
// of peers.
//
// So the package uses (a). A distinct Attributes value is a profile. For
// every (peer, profile) in use there is one export statement
//
//	if neighbor == peer and large-community == 4294967295:<peer-id>:<profile-id>
//	then set communities and large communities of the profile
//	     (replacing the internal tags), set local-pref, accept
//
// in a single global export policy whose default is reject, so a path
// reaches exactly the peers it is tagged for. A path is injected once, with
// next hop 0.0.0.0 or :: (GoBGP then uses each session's local address) and
// one tag per destination peer; the same prefix can therefore carry
// different attributes to different peers. The tag's global administrator
// 4294967295 is reserved (RFC 7300) and tags never leave the speaker: every
// statement replaces the large communities.
//
// Statements change only when the set of (peer, profile) pairs changes:
// when a BGPAdvertisement's attributes or peers change, never when a
// Service comes or goes. Peer.Profiles declares a peer's profiles up front,
// so even the first and last Service of an advertisement leave policies
// untouched; without the declaration the first use adds one statement and
// the last use removes it (a few calls, no soft reset). Adding a statement
// does not need a soft reset because statements are always installed before
// the paths that use them and removed after the last such path is gone.
//
// # Address families
//
// A peer's session carries the family of its address: IPv4 prefixes go to
// IPv4 peers, IPv6 prefixes to IPv6 peers over MP-BGP; other combinations
// are skipped (an IPv4 next hop cannot be given for an IPv6 prefix without
// RFC 8950 extended next hop, which routers must then support). A
// dual-stack node configures one peer per family.
//
// # Costs
//
// Apply's diff walks the desired table (about 0.35 µs per unchanged path at
// 100k paths, no allocation); its GoBGP work is proportional to the changes
// only. UpdatePaths costs O(changed paths). Changing session parameters of
// one peer resets that session only; a BFD change resets none; changing the
// ASN or router ID restarts all sessions.
package bgp
