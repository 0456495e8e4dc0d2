package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/bgplb/bgplb/bgp"
	"github.com/bgplb/bgplb/controllers/l2mode"
	"github.com/bgplb/bgplb/controllers/speaker"
)

// setupSpeaker creates the embedded BGP server, registers the node
// reconciler, the BGPNodeStatus writer and the BGPPeer status reconciler
// with the manager, and returns the function that stops BGP once the
// manager has exited.
//
// How the speaker leaves its routers:
//   - SIGTERM (what Kubernetes sends on a rolling update, pod deletion or
//     node shutdown), or the manager failing: a restart. Sessions that
//     negotiated graceful restart are closed without a Cease NOTIFICATION,
//     so routers keep the node's routes for the restart time while the next
//     speaker comes up (RFC 4724); sessions without it get a Cease and
//     their routes go at once.
//   - SIGINT (an operator's Ctrl-C or kill -INT): a deliberate teardown.
//     Every session gets a Cease and routers withdraw the node's routes
//     at once.
//   - The graceful way to take a node out while its speaker runs is the
//     node.kubernetes.io/exclude-from-external-load-balancers label: the
//     routes are re-announced with GRACEFUL_SHUTDOWN, withdrawn after
//     --drain-time, and come back when the label is removed. Deleting a
//     BGPPeer, or unselecting the node from it, closes that session with a
//     Cease.
//
// Either way the node's BGPNodeStatus is then marked stopped (best effort).
func setupSpeaker(mgr ctrl.Manager, opts speakerOptions) (stop func(), err error) {
	log := ctrl.Log.WithName("speaker").WithValues("node", opts.NodeName)
	if opts.Backend.name == backendFRRK8s {
		return setupSpeakerFRRK8s(mgr, opts)
	}
	if err := addFRRK8sCleanup(mgr, opts); err != nil {
		return nil, err
	}
	if opts.ListenPort < 0 || opts.ListenPort > 65535 {
		return nil, fmt.Errorf("--bgp-listen-port %d is not a TCP port (0 turns listening off)", opts.ListenPort)
	}
	spk, err := bgp.New(bgp.Options{Logger: log.WithName("bgp"), ListenPort: int32(opts.ListenPort)})
	if err != nil {
		return nil, fmt.Errorf("creating the BGP speaker: %w", err)
	}
	h, err := speaker.Setup(mgr, speaker.Options{
		NodeName: opts.NodeName, BGP: spk, DrainTime: opts.DrainTime, DefaultClass: &opts.DefaultClass,
	})
	if err != nil {
		return nil, err
	}
	if err := l2mode.Setup(mgr, l2mode.Options{
		NodeName: opts.NodeName, HeartbeatPort: opts.L2HeartbeatPort, DefaultClass: opts.DefaultClass,
	}); err != nil {
		return nil, fmt.Errorf("setting up L2 mode: %w", err)
	}
	// The manager's signal handler also sees SIGINT and stops the manager;
	// this channel only tells the two signals apart afterwards.
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	return func() {
		signal.Stop(interrupt)
		graceful, why := true, "speaker stopped for a restart (graceful restart: routers keep its routes for the restart time)"
		select {
		case <-interrupt:
			graceful, why = false, "speaker stopped by SIGINT (Cease sent: routes withdrawn)"
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := spk.Stop(ctx, graceful); err != nil {
			log.Error(err, "stopping BGP", "graceful", graceful)
		} else {
			log.Info("BGP stopped", "graceful", graceful)
		}
		mctx, mcancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer mcancel()
		if err := h.MarkStopped(mctx, why); err != nil {
			log.Error(err, "recording the stop in BGPNodeStatus")
		}
	}, nil
}
