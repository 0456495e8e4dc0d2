// Package ipam holds the controller's reconcilers: they watch LoadBalancer
// Services, IPPools and IPAllocations, ask the pure allocator in
// internal/ipam for decisions, and write allocations and status.
package ipam
