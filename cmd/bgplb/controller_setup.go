package main

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/bgplb/bgplb/controllers/ipam"
	"github.com/bgplb/bgplb/controllers/peerstatus"
)

// setupController registers the IPAM and BGPPeer status reconcilers with
// the manager.
func setupController(mgr ctrl.Manager, opts controllerOptions) error {
	if err := ipam.Setup(mgr, ipam.Options{DefaultClass: opts.DefaultClass, Workers: opts.Workers, NoMetalLBAliases: !opts.MetalLBAnnotations}); err != nil {
		return err
	}
	if err := peerstatus.Setup(mgr); err != nil {
		return fmt.Errorf("peer status: %w", err)
	}
	return nil
}
