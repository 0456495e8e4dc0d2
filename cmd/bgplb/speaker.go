package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// runSpeaker runs the per-node speaker: it announces this node's share of the
// Service addresses over BGP.
func runSpeaker(args []string) error {
	fs := flag.NewFlagSet("speaker", flag.ContinueOnError)
	var common commonFlags
	common.bind(fs, "0", ":7473")
	nodeName := fs.String("node-name", os.Getenv("NODE_NAME"), "Name of the Node this speaker runs on (from the downward API); defaults to $NODE_NAME.")
	listenPort := fs.Int("bgp-listen-port", 0, "TCP port to accept BGP connections on; 0 (the default) does not listen, the speaker only connects out.")
	drain := fs.Duration("drain-time", 30*time.Second, "How long a node excluded from load balancers announces its routes with GRACEFUL_SHUTDOWN before withdrawing them.")
	defaultClass := bindDefaultClass(fs)
	gcPercent := fs.Int("gc-percent", speakerGCPercent,
		"Go garbage collector target (as GOGC): heap growth allowed between collections, in percent of the live heap. Ignored when $GOGC is set.")
	l2Port := fs.Int("l2-heartbeat-port", 0, "UDP port the speakers exchange L2-mode heartbeats on, node to node (the manifests set 7947); 0 turns L2 mode (L2Advertisement) off.")
	var backend backendFlags
	backend.bind(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := backend.validate(); err != nil {
		return err
	}
	if *nodeName == "" {
		return errors.New("--node-name (or $NODE_NAME) is required")
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&common.zap)))
	log := ctrl.Log.WithName("speaker").WithValues("node", *nodeName)

	cfg, err := common.restConfig()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, common.managerOptions(speakerScheme()))
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	stop, err := setupSpeaker(mgr, speakerOptions{
		NodeName: *nodeName, ListenPort: *listenPort, DrainTime: *drain, DefaultClass: *defaultClass,
		L2HeartbeatPort: *l2Port,
		Backend:         backend,
	})
	if err != nil {
		return err
	}
	if err := addProbes(mgr); err != nil {
		return err
	}
	log.Info("starting", "version", versionString(), "defaultClass", *defaultClass, "bgpBackend", backend.name)
	err = common.startManager(mgr)
	if stop != nil {
		stop()
	}
	if err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	return nil
}

// speakerGCPercent is the speaker's default GC target. A speaker runs on
// every node, so its memory counts once per node, while its CPU per change
// is a fraction of a millisecond: collecting at 25% heap growth instead of
// Go's 100% keeps its resident memory near 100 MiB at 10,000 Services for
// a few tenths of a millisecond more per change (make bench-speaker).
const speakerGCPercent = 25

// speakerOptions are the settings of the speaker's reconciler.
type speakerOptions struct {
	NodeName     string
	ListenPort   int
	DrainTime    time.Duration
	DefaultClass bool
	// L2HeartbeatPort is --l2-heartbeat-port (0: L2 mode off).
	L2HeartbeatPort int
	// Backend says who runs BGP: the embedded GoBGP server or frr-k8s.
	Backend backendFlags
}
