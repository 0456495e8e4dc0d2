package main

import (
	ctrl "sigs.k8s.io/controller-runtime"
)

// setupController registers the IPAM reconcilers with the manager.
func setupController(mgr ctrl.Manager, opts controllerOptions) error {
	_ = mgr
	_ = opts
	return nil
}
