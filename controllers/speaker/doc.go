// Package speaker holds the per-node controllers of `bgplb speaker`: they
// gather the cluster state that concerns one node, compute its desired BGP
// state with pure functions and hand it to package bgp.
//
// # One reconciler per node, per-Service runs
//
// Every watched change (the node's Node, BGPPeers, BGPAdvertisements, IPPool
// labels, IPAllocations, LoadBalancer Services, their EndpointSlices, the
// password Secrets) enqueues the same single key, so a burst of changes
// collapses into a few runs, and marks what it touched (dirtySet):
//
//   - A node-wide change (peer, advertisement, pool, Node, Secret; the drain
//     phase ending; the first run; a retry after an error) recomputes the
//     node's whole desired state with Compute (no I/O, table-tested) and
//     calls bgp.Speaker.Apply, which diffs it against what is applied.
//   - A change to a Service, its EndpointSlices or an IPAllocation
//     recomputes only the addresses of the IPAllocations concerned (a
//     Service finds its own through an index of the allocation store) in
//     the table Compute built (pathTable), and hands the paths that changed
//     to bgp.Speaker.UpdatePaths in one call. Aggregated prefixes count
//     their members: an aggregate stays while one is announced.
//
// Either way one Service change costs O(1) GoBGP calls, and a per-Service
// run costs the same CPU at 1,000 or 100,000 Services.
//
// # What is announced
//
// See Compute. In short: an address only when an IPAllocation lists a
// Service holding it (docs/architecture.md#announce-only-allocated), only
// while one of its Services has a usable endpoint (ready, or serving while
// terminating, because kube-proxy still sends traffic there; on this node
// for externalTrafficPolicy Local), through every BGPAdvertisement
// selecting the node and the pool, to each advertisement's peers with that
// advertisement's attributes, as the prefix of its aggregation length.
//
// The router ID is the node's IPv4 InternalIP, else any IPv4 node address,
// else (IPv6-only nodes) a stable 32-bit hash of the node name. Each peer
// uses its BGPPeer's localASN; the global ASN GoBGP needs is the previous
// one while a peer still uses it (changing it restarts every session), else
// the first peer's.
//
// # Draining
//
// A node labelled node.kubernetes.io/exclude-from-external-load-balancers
// re-announces its routes with GRACEFUL_SHUTDOWN (RFC 8326) for the drain
// time, then withdraws them; sessions stay up. The drain start is kept in
// memory and in the Draining condition's transition time, so a restarted
// speaker resumes the drain instead of starting it again. Removing the label
// brings the routes back.
//
// # Status
//
// The node's BGPNodeStatus (named after the node, owned by the Node so the
// garbage collector removes it with it) is written by a separate loop that
// polls the BGP sessions every second and whenever the reconciler decides
// something; it writes only when the status differs from the stored one,
// and at most once a second. Session transitions become events on the
// BGPPeer, and configuration problems (missing password Secret...) become
// warning events and the BGPPeer's Valid condition; the peer is then left
// out and its session reported as Idle with the reason, never a crash.
//
// BGPPeer status (nodes, established nodes, "x/y" sessions, Ready, Valid)
// is computed from all BGPNodeStatus objects by peerstatus.Compute, in the
// controller (package peerstatus): one writer, and no speaker has to watch
// the other nodes' status.
//
// # Caches and RBAC
//
// The speaker uses a cache of its own: only its own Node and BGPNodeStatus,
// only Secrets of bgplb-system (its RBAC allows no more), managedFields
// dropped from every object. It reads everything without deep copies;
// IPAllocations, of which there are thousands, straight from their
// informer's store, without even the shallow copy the cache's Get and List
// make (see stores). Services and EndpointSlices, of which there are
// thousands too, are not cached at all: a reflector of each kind feeds a
// factStore that keeps only what anyServiceWants reads (serviceFacts,
// endpointFacts) and tells the reconciler which Services' facts changed.
// It writes only its BGPNodeStatus and events.
package speaker
