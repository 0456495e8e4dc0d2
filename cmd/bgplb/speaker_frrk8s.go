package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/bgplb/bgplb/controllers/frrk8s"
	"github.com/bgplb/bgplb/controllers/speaker"
)

// The BGP backends of the speaker (--bgp-backend).
const (
	backendGoBGP  = "gobgp"
	backendFRRK8s = "frr-k8s"
)

// backendFlags are the speaker's flags that choose and tune its BGP backend.
type backendFlags struct {
	name         string
	frrNamespace string
	frrDebounce  time.Duration
}

func (b *backendFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&b.name, "bgp-backend", backendGoBGP, "Who runs BGP on the node: gobgp (the embedded GoBGP server, default) or frr-k8s (write the node's BGP state as an FRRConfiguration for frr-k8s; no BGP server runs in the speaker). See docs/frr-k8s.md.")
	fs.StringVar(&b.frrNamespace, "frr-k8s-namespace", frrk8s.DefaultNamespace, "With --bgp-backend=frr-k8s: the namespace frr-k8s runs in (it reads FRRConfigurations and password Secrets only there).")
	fs.DurationVar(&b.frrDebounce, "frr-k8s-debounce", 200*time.Millisecond, "With --bgp-backend=frr-k8s: the least time between two writes of the node's FRRConfiguration; changes meanwhile go into the next write.")
}

func (b *backendFlags) validate() error {
	switch b.name {
	case backendGoBGP, backendFRRK8s:
		return nil
	}
	return fmt.Errorf("--bgp-backend %q: want %s or %s", b.name, backendGoBGP, backendFRRK8s)
}

// setupSpeakerFRRK8s registers the speaker's controllers with frr-k8s as
// the BGP backend: no GoBGP server runs. Stopping the speaker leaves the
// node's FRRConfiguration in place, so FRR keeps the sessions and routes
// while the speaker restarts; it goes when the node's BGPNodeStatus does
// (node deleted, bgplb uninstalled) or when the speaker runs with GoBGP
// again.
func setupSpeakerFRRK8s(mgr ctrl.Manager, opts speakerOptions) (stop func(), err error) {
	log := ctrl.Log.WithName("speaker").WithValues("node", opts.NodeName)
	b, err := frrk8s.New(mgr, frrk8s.Options{NodeName: opts.NodeName, Namespace: opts.Backend.frrNamespace, Debounce: opts.Backend.frrDebounce})
	if err != nil {
		return nil, err
	}
	// The node's BGPNodeStatus is not marked stopped on exit, unlike with
	// GoBGP: FRR keeps running the sessions, so "Idle" would be false; the
	// next speaker reports them again.
	if _, err := speaker.Setup(mgr, speaker.Options{
		NodeName: opts.NodeName, BGP: b, DrainTime: opts.DrainTime, DefaultClass: &opts.DefaultClass,
	}); err != nil {
		return nil, err
	}
	return func() {
		log.Info("speaker stopped; frr-k8s keeps the node's BGP configuration and sessions")
	}, nil
}

// addFRRK8sCleanup makes a GoBGP speaker remove, once it runs, what an
// earlier frr-k8s speaker wrote for its node (frrk8s.Cleanup).
func addFRRK8sCleanup(mgr ctrl.Manager, opts speakerOptions) error {
	log := ctrl.Log.WithName("speaker").WithValues("node", opts.NodeName)
	err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		n, err := frrk8s.Cleanup(ctx, mgr.GetAPIReader(), mgr.GetClient(), opts.Backend.frrNamespace, opts.NodeName)
		if err != nil {
			log.Error(err, "removing the node's FRRConfiguration left by the frr-k8s backend")
		} else if n > 0 {
			log.Info("removed what the frr-k8s backend had written for this node", "objects", n)
		}
		return nil
	}))
	if err != nil {
		return fmt.Errorf("adding the frr-k8s cleanup: %w", err)
	}
	return nil
}
