// Package ipam holds the controller's reconcilers: they watch LoadBalancer
// Services, IPPools and IPAllocations, ask the pure allocator in
// internal/allocator for decisions, and write allocations and status.
//
// The decisions are pure functions (request.go, service.go, pools.go,
// conditions.go) and an in-memory State (state.go) that owns the allocator
// and knows who holds which address. The reconcilers are thin shells:
//
//   - The Service reconciler reads the Service from the cache, decides under
//     the State's mutex (microseconds), then writes: first the IPAllocation
//     named after each new address (the API server's name uniqueness is the
//     lock: AlreadyExists from someone else marks the address taken and the
//     decision is made again), then the Service status (a strategic merge
//     patch guarded by the resourceVersion the decision saw), then the
//     releases. Sixteen workers overlap these writes.
//   - Memory proposes, the API decides (allocations.go): an existing
//     IPAllocation is patched or deleted only at the resourceVersion last
//     seen, a holder is taken off only when the API server says its Service
//     no longer wants the address, and whenever an object says something
//     else than memory expected, memory takes the object's word and the
//     Services involved are decided again. So several controllers at once
//     (an overlapping old leader, a misconfigured install) never show one
//     address on two Services.
//   - The IPPool reconciler applies the set of pools (overlaps are decided
//     across all of them: the older pool wins) and writes pool status and
//     metrics, coalesced during bursts. A deleted pool goes at once: the
//     IPAllocations, not the pool object, keep addresses with their
//     Services, which keep them until they let go (condition reason
//     PoolDeleted). It removes the finalizer older versions put on pools.
//   - Every IPAllocation carries its pool's labels (spec.poolLabels, for
//     advertisements that select pools by label once the pool is gone):
//     the Service reconciler writes them on create, the IPPool reconciler
//     keeps them in step while the pool exists (poollabels.go) with merge
//     patches of that field alone, each guarded by resourceVersion.
//
// On start the State is rebuilt from every IPAllocation in the cache before
// the first decision (those of deleted pools included: their addresses
// stay held under the old pool's name), and the Services they name are reconciled, so an
// address never changes or doubles across restarts, and Services deleted
// while the controller was down release theirs.
package ipam
