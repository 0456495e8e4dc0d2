// Package allocator is bgplb's address allocator: pure bookkeeping of which pool
// holds which address, with no Kubernetes client, no I/O and no goroutines.
//
// The IPAM controller keeps one Allocator per process, rebuilds it at start
// from IPAllocation objects (Reserve, or ReserveAny for addresses an edit cut
// out of their pool), and serializes every call under its own mutex: an
// Allocator is not safe for concurrent use. The API server stays the lock
// (an IPAllocation named after the address); the Allocator only makes the
// next free address cheap to find, and AllocateNext lets the caller step over
// addresses the API server says are taken.
//
// Data structure. Held addresses are kept per family as runs of consecutive
// addresses with the same holder, in a treap (runSet). Each pool also numbers
// its usable addresses 0..n-1 across all its ranges ("ordinals", skipping
// .0/.255 with AvoidBuggyIPs and the IPv4-mapped IPv6 block) and keeps the
// ordinals taken by any pool as maximal runs. Because usable addresses are
// contiguous in ordinal space, the lowest free address is the end of the
// first run plus one: a single O(log runs) lookup, whatever the pool size
// (a /8 or a /64) and however full or fragmented it is. Nothing is sized by
// the pool: memory is one 64-byte node per run in each tree, so a pool filled
// in order costs almost nothing, and the worst case (every other address
// held) is about 128 bytes per held address.
package allocator
