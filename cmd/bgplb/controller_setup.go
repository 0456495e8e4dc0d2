package main

import (
	ctrl "sigs.k8s.io/controller-runtime"

	ipamctrl "github.com/bgplb/bgplb/controllers/ipam"
)

// setupController registers the IPAM reconcilers with the manager.
func setupController(mgr ctrl.Manager, opts controllerOptions) error {
	return ipamctrl.Setup(mgr, ipamctrl.Options{DefaultClass: opts.DefaultClass, Workers: opts.Workers})
}
