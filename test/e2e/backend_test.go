package e2e

import (
	"os"

	. "github.com/onsi/ginkgo/v2"

	"github.com/bgplb/bgplb/test/labcluster"
)

// The suite runs once per BGP backend of the speakers (make test-lab runs
// both): $BGPLB_LAB_BACKEND, "gobgp" (default) or "frr-k8s". With frr-k8s
// every node runs real FRR daemons and frr-k8s's own controller, reloader
// and status exporter, and only the specs labelled "bgp" run: what a router
// and a user see of BGP is the same contract for both backends.
var backend = func() string {
	if b := os.Getenv("BGPLB_LAB_BACKEND"); b != "" {
		return b
	}
	return labcluster.BackendGoBGP
}()

// bgpLabel marks the specs that concern BGP, run for every backend.
var bgpLabel = Label("bgp")

// Why specs other than "bgp" ones are not run for frr-k8s.
const (
	skipL2 = "L2 mode is not available with the frr-k8s backend: its speaker runs no L2 reconciler (docs/frr-k8s.md)"
	skipGR = "this spec restarts the speaker's own GoBGP server; with frr-k8s the speaker runs no BGP server and " +
		"restarting it leaves FRR's sessions untouched (docs/frr-k8s.md, 'A speaker stopped or restarting')"
)

// onlyGoBGP skips the spec (or ordered container) with why when the suite
// runs the frr-k8s backend.
func onlyGoBGP(why string) {
	if backend != labcluster.BackendGoBGP {
		Skip("not run with --bgp-backend=" + backend + ": " + why)
	}
}

// labelFilterFor is the label filter the suite runs with: for frr-k8s, the
// "bgp" specs within whatever filter was given.
func labelFilterFor(given string) string {
	if backend == labcluster.BackendGoBGP {
		return given
	}
	if given == "" {
		return "bgp"
	}
	return "bgp && (" + given + ")"
}
