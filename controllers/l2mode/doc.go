// Package l2mode is the speaker's L2 mode reconciler: it gathers the addresses
// L2Advertisements select and the nodes eligible for them, lets
// internal/l2election choose one owner per address, and makes the l2
// responder answer ARP and NDP for the addresses this node owns.
package l2mode
