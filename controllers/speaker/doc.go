// Package speaker holds the per-node reconciler of the speaker: it gathers
// the cluster state that concerns its node, computes the desired BGP state
// with pure functions and hands it to package bgp.
package speaker
