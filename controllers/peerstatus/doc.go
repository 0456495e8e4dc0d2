// Package peerstatus keeps each BGPPeer's status (nodes, established nodes,
// "x/y" sessions, Valid and Ready conditions) in line with what every
// node's speaker reports in its BGPNodeStatus.
//
// It runs in the controller binary, on the elected leader: one writer for
// all peers. (Speakers used to do this themselves, each watching every
// node's BGPNodeStatus; on a cluster of N nodes that made each status write
// an event for N watchers. Now a speaker watches only its own.) The
// decision is Compute, a pure function of the peer, every BGPNodeStatus and
// the peer's configuration problem; whether a peer's configuration can be
// completed is the speaker's rule (speaker.PeerProblem, the same check that
// decides whether a node opens the session). The reconciler gathers the
// inputs and patches the result.
package peerstatus
