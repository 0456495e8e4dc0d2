package main

import (
	"flag"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// runController runs the IPAM controller: it allocates addresses from IPPools
// to LoadBalancer Services. Several replicas may run; one leads.
func runController(args []string) error {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	var common commonFlags
	common.bind(fs, "0", ":8081")
	leaderElect := fs.Bool("leader-elect", false, "Elect a leader so only one replica allocates at a time.")
	leaderNS := fs.String("leader-election-namespace", v1alpha1.InstallNamespace, "Namespace of the leader election Lease.")
	leaseDuration := fs.Duration("leader-election-lease-duration", 15*time.Second,
		"How long a standby waits after the leader's last renewal before taking over (a killed leader is replaced after at most this long).")
	renewDeadline := fs.Duration("leader-election-renew-deadline", 10*time.Second,
		"How long the leader keeps retrying to renew before it stops leading; must be less than the lease duration.")
	retryPeriod := fs.Duration("leader-election-retry-period", 2*time.Second, "How often candidates try to acquire or renew the lease.")
	defaultClass := bindDefaultClass(fs)
	workers := fs.Int("workers", 16, "Services reconciled concurrently (decisions are serialized; API writes overlap).")
	metallbAnn := fs.Bool("metallb-annotations", true,
		"Honour MetalLB's Service annotations (metallb.io/ and metallb.universe.tf/ loadBalancerIPs, address-pool, allow-shared-ip) "+
			"as aliases of bgplb's; bgplb's own win when both are set. See docs/migrating-from-metallb.md.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&common.zap)))
	log := ctrl.Log.WithName("controller")

	cfg, err := common.restConfig()
	if err != nil {
		return err
	}
	opts := common.managerOptions(controllerScheme())
	opts.LeaderElection = *leaderElect
	opts.LeaderElectionID = "bgplb-controller.bgplb.io"
	opts.LeaderElectionNamespace = *leaderNS
	if *renewDeadline >= *leaseDuration || *retryPeriod >= *renewDeadline {
		return fmt.Errorf("leader election: need retry period (%s) < renew deadline (%s) < lease duration (%s)", *retryPeriod, *renewDeadline, *leaseDuration)
	}
	opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = leaseDuration, renewDeadline, retryPeriod
	// Leaving the lease at once on shutdown lets a standby take over without
	// waiting for the lease to expire.
	opts.LeaderElectionReleaseOnCancel = true
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	if err := setupController(mgr, controllerOptions{DefaultClass: *defaultClass, Workers: *workers, MetalLBAnnotations: *metallbAnn}); err != nil {
		return err
	}
	if err := addProbes(mgr); err != nil {
		return err
	}
	log.Info("starting", "version", versionString(), "defaultClass", *defaultClass, "leaderElect", *leaderElect)
	if err := common.startManager(mgr); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	return nil
}

// controllerOptions are the settings of the controller's reconcilers.
type controllerOptions struct {
	DefaultClass bool
	Workers      int
	// MetalLBAnnotations: read MetalLB's Service annotations as aliases.
	MetalLBAnnotations bool
}
