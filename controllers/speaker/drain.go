package speaker

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// GracefulShutdownCommunity is the well-known GRACEFUL_SHUTDOWN community
// (RFC 8326, 65535:0) a draining node attaches to its routes so that routers
// move traffic away before the routes are withdrawn.
const GracefulShutdownCommunity uint32 = 0xFFFF0000

// DrainPhase says where a node is in its graceful withdrawal.
type DrainPhase string

// Drain phases.
const (
	// DrainNone: the node is not excluded; routes are announced normally.
	DrainNone DrainPhase = ""
	// DrainGracefulShutdown: the node is excluded and within its drain time;
	// routes are announced with GRACEFUL_SHUTDOWN.
	DrainGracefulShutdown DrainPhase = "GracefulShutdown"
	// DrainWithdrawn: the drain time is over; no route is announced.
	DrainWithdrawn DrainPhase = "Withdrawn"
)

// NextDrainSince returns when the current drain started: zero when the node
// is not excluded; otherwise the remembered start, else the start persisted
// in the node's status by a previous run of the speaker (so a restart does
// not restart the drain), else now.
func NextDrainSince(excluded bool, remembered, persisted, now time.Time) time.Time {
	switch {
	case !excluded:
		return time.Time{}
	case !remembered.IsZero():
		return remembered
	case !persisted.IsZero() && !persisted.After(now):
		return persisted
	}
	return now
}

// Excluded reports whether the node carries the label that excludes it from
// external load balancers.
func Excluded(node *corev1.Node) bool {
	if node == nil {
		return false
	}
	_, ok := node.Labels[corev1.LabelNodeExcludeBalancers]
	return ok
}

// drain decides Compute's drain fields: when the drain started (now if the
// node is excluded and no start is known), its phase, and how long until
// the phase changes by itself.
func drain(in Inputs) (since time.Time, phase DrainPhase, requeueAfter time.Duration) {
	excluded := Excluded(in.Node)
	since = in.DrainSince
	if excluded && since.IsZero() {
		since = in.Now
	}
	phase, requeueAfter = drainPhase(excluded, since, in.DrainTime, in.Now)
	return since, phase, requeueAfter
}

// drainPhase decides the phase and, during the graceful shutdown, how long
// until it ends.
func drainPhase(excluded bool, since time.Time, drain time.Duration, now time.Time) (DrainPhase, time.Duration) {
	if !excluded {
		return DrainNone, 0
	}
	if since.IsZero() {
		since = now
	}
	if left := since.Add(drain).Sub(now); left > 0 {
		return DrainGracefulShutdown, left
	}
	return DrainWithdrawn, 0
}
