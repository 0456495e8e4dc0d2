package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/internal/migrate/metallb"
)

func init() { extraCommands["migrate"] = runMigrate }

const migrateUsage = `Usage:
  bgplb migrate metallb [-f FILE|-] [--kubeconfig PATH] [--namespace NS]

Prints bgplb objects (IPPool, BGPPeer, BGPAdvertisement, password Secrets in
bgplb-system) equivalent to a MetalLB configuration, as YAML for kubectl
apply -f, with a comment on every field that does not map. It reads the
MetalLB objects from FILE (YAML or JSON, several documents, "-" for stdin),
or without -f from the cluster. It changes nothing in the cluster.
See docs/migrating-from-metallb.md.
`

// runMigrate is `bgplb migrate <from>`; only MetalLB so far.
func runMigrate(args []string) error {
	if len(args) == 0 || args[0] != "metallb" {
		fmt.Fprint(os.Stderr, migrateUsage)
		return errors.New(`the only migration is "metallb"`)
	}
	fs := flag.NewFlagSet("migrate metallb", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), migrateUsage); fs.PrintDefaults() }
	file := fs.String("f", "", `Read MetalLB objects from this file ("-": stdin) instead of the cluster.`)
	kubeconfig := fs.String("kubeconfig", "", "Path to a kubeconfig; $KUBECONFIG or in-cluster config when empty (without -f).")
	namespace := fs.String("namespace", "", "Read MetalLB objects of this namespace only (without -f); all namespaces when empty.")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var cfg *metallb.Config
	var err error
	if *file != "" {
		cfg, err = readMetalLBFile(*file)
	} else {
		cfg, err = readMetalLBCluster(*kubeconfig, *namespace)
	}
	if err != nil {
		return err
	}
	return metallb.Write(os.Stdout, metallb.Convert(cfg))
}

func readMetalLBFile(path string) (*metallb.Config, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("opening MetalLB objects: %w", err)
		}
		defer f.Close()
		r = f
	}
	cfg, err := metallb.Read(r)
	if err != nil {
		return nil, fmt.Errorf("reading MetalLB objects from %s: %w", path, err)
	}
	return cfg, nil
}

func readMetalLBCluster(kubeconfig, namespace string) (*metallb.Config, error) {
	getConfig := ctrl.GetConfig
	if kubeconfig != "" {
		getConfig = func() (*rest.Config, error) { return clientcmd.BuildConfigFromFlags("", kubeconfig) }
	}
	rc, err := getConfig()
	if err != nil {
		return nil, fmt.Errorf("loading Kubernetes client configuration: %w", err)
	}
	sch := runtime.NewScheme()
	if err := corev1.AddToScheme(sch); err != nil {
		return nil, fmt.Errorf("building the scheme: %w", err)
	}
	c, err := client.New(rc, client.Options{Scheme: sch})
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return metallb.FromCluster(ctx, c, namespace)
}
