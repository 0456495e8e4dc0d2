package main

import (
	"flag"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsfilters "sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bgplb/bgplb/controllers/restmapper"
)

// commonFlags are the conventional kubebuilder flags every subcommand has.
type commonFlags struct {
	kubeconfig      string
	metricsAddr     string
	metricsSecure   bool
	probeAddr       string
	pprofAddr       string
	qps             float64
	compression     bool
	burst           int
	zap             zap.Options
	gracefulTimeout time.Duration
}

func (c *commonFlags) bind(fs *flag.FlagSet, metricsDefault, probeDefault string) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "Path to a kubeconfig; in-cluster config or $KUBECONFIG when empty.")
	fs.StringVar(&c.metricsAddr, "metrics-bind-address", metricsDefault, "Address the metrics endpoint binds to, e.g. :8443; 0 turns it off.")
	fs.BoolVar(&c.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS with Kubernetes authentication and authorization.")
	fs.StringVar(&c.probeAddr, "health-probe-bind-address", probeDefault, "Address the /healthz and /readyz endpoints bind to; 0 turns them off.")
	fs.StringVar(&c.pprofAddr, "pprof-bind-address", "", "Address Go's /debug/pprof endpoints bind to, unauthenticated (e.g. 127.0.0.1:6060); empty turns them off.")
	fs.Float64Var(&c.qps, "kube-api-qps", 200, "Client-side rate limit for requests to the API server (queries per second).")
	fs.IntVar(&c.burst, "kube-api-burst", 400, "Client-side burst for requests to the API server.")
	fs.BoolVar(&c.compression, "kube-api-compression", false, "Ask the API server to gzip its responses; worth it only over slow links.")
	fs.DurationVar(&c.gracefulTimeout, "graceful-shutdown-timeout", 30*time.Second, "How long to wait for work to finish on shutdown.")
	c.zap = zap.Options{Development: false}
	c.zap.BindFlags(fs)
}

// bindDefaultClass binds --default-class, which the controller (addresses)
// and the speaker (announcements) both take: they decide which Services are
// bgplb's by the same rule, ownership.Qualifies, and must be given the same
// value.
func bindDefaultClass(fs *flag.FlagSet) *bool {
	return fs.Bool("default-class", true, "Also handle LoadBalancer Services that set no loadBalancerClass.")
}

func (c *commonFlags) restConfig() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if c.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("loading Kubernetes client configuration: %w", err)
	}
	cfg.QPS = float32(c.qps)
	cfg.Burst = c.burst
	// The API server gzips every flush of a watch for clients that accept
	// gzip, and the client inflates it again: CPU on both ends for what is
	// a fast link inside a cluster. During an IPAM burst that was the
	// largest cost the controller's watches added to the API server.
	cfg.DisableCompression = !c.compression
	cfg.UserAgent = "bgplb/" + version
	return cfg, nil
}

// managerOptions are the manager's options; scheme knows the kinds this
// subcommand reads and writes (speakerScheme, controllerScheme).
func (c *commonFlags) managerOptions(scheme *runtime.Scheme) ctrl.Options {
	metrics := metricsserver.Options{BindAddress: c.metricsAddr, SecureServing: c.metricsSecure}
	if c.metricsSecure {
		metrics.FilterProvider = metricsfilters.WithAuthenticationAndAuthorization
	}
	return ctrl.Options{
		Scheme: scheme,
		// Kinds bgplb reads are mapped without discovery, so the manager
		// can be built while the API server is down (restmapper.New).
		MapperProvider: func(c *rest.Config, hc *http.Client) (meta.RESTMapper, error) {
			dynamic, err := apiutil.NewDynamicRESTMapper(c, hc)
			if err != nil {
				return nil, fmt.Errorf("creating the discovery REST mapper: %w", err)
			}
			return restmapper.New(scheme, dynamic), nil
		},
		Metrics:                 metrics,
		HealthProbeBindAddress:  c.probeAddr,
		PprofBindAddress:        c.pprofAddr,
		GracefulShutdownTimeout: &c.gracefulTimeout,
	}
}

func addProbes(mgr ctrl.Manager) error {
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}
	return nil
}

// startManager runs mgr until a signal stops it. controller-runtime
// v0.25.2's manager never returns, spinning a core, when it is stopped
// while a cache still waits for its first sync, as it does while the API
// server is unreachable (kubernetes-sigs/controller-runtime#3440). It gets
// the graceful shutdown timeout plus a little; then the process exits
// anyway, instead of burning CPU until the kubelet's SIGKILL.
func (c *commonFlags) startManager(mgr ctrl.Manager) error {
	ctx := ctrl.SetupSignalHandler()
	errc := make(chan error, 1)
	go func() { errc <- mgr.Start(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-errc:
		return err
	case <-time.After(c.gracefulTimeout + 5*time.Second):
		return fmt.Errorf("the manager did not stop within %s of the signal (caches that never synced?); exiting anyway", c.gracefulTimeout+5*time.Second)
	}
}
