package l2election

// Claim is a peer's heartbeat saying it answers for an address.
type Claim struct {
	Node string
	// APIStale: the claiming speaker has lost the API server, so its
	// view of the cluster may be old.
	APIStale bool
}

// Yields reports whether self, which elected itself owner of the address
// with key, must stop answering for it because the peer claims it too.
// Views differ only while they catch up, or while a speaker is cut off
// from the API server; heartbeats carry the claims so that two nodes
// answer for at most one heartbeat. The rule is the same on both sides
// and antisymmetric, so exactly one of two claimants yields: the one
// whose view is stale (lost the API server) when only one is, else the
// one with the lower rendezvous weight (ties: the greater name).
func Yields(key, self string, selfStale bool, peer Claim) bool {
	if peer.Node == self {
		return false
	}
	if selfStale != peer.APIStale {
		return selfStale
	}
	ws, wp := Weight(key, self), Weight(key, peer.Node)
	if ws != wp {
		return ws < wp
	}
	return self > peer.Node
}
