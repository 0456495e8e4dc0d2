// Command bgplb-cluster runs bgplb on a real-node Kubernetes cluster built
// on this machine (test/cluster): the netns lab's FRR routers and client,
// kube-apiserver + etcd, kube-controller-manager, kube-scheduler, and three
// nodes each running containerd, kubelet and kube-proxy in its own network
// namespace. bgplb is installed with `kubectl apply -k` of config/default
// (test/cluster/overlay sets the image). "make demo" (demo-cluster) builds the
// images and runs it.
//
//	bgplb-cluster demo [-keep-logs]   # Ctrl-C tears it down
//	bgplb-cluster up [-keep-logs]     # the cluster with bgplb installed, no demo workload
//	bgplb-cluster cleanup             # remove what a crashed run left behind
//
// Build it without -trimpath: it finds config/ and the overlay from its
// source paths.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bgplb/bgplb/test/cluster"
	"github.com/bgplb/bgplb/test/envtest/framework"
	"github.com/bgplb/bgplb/test/lab"
)

const usage = `bgplb-cluster runs bgplb on a real-node Kubernetes cluster on this machine
(real kubelets, containerd, kube-proxy and pods; FRR routers; all in network
namespaces). Needs root, hack/lab-deps.sh --cluster, the binaries of
hack/cluster-assets.sh and the images of "make cluster-images".

Usage:
  bgplb-cluster demo [flags]   cluster + bgplb + a dual-stack demo Service; Ctrl-C tears it down
  bgplb-cluster up [flags]     cluster + bgplb, no demo workload; Ctrl-C tears it down
  bgplb-cluster cleanup        remove what a crashed run left behind
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "demo":
		err = run(args, true)
	case "up":
		err = run(args, false)
	case "cleanup":
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err = cluster.CleanupStale(ctx, "")
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "bgplb-cluster: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bgplb-cluster:", err)
		os.Exit(1)
	}
}

func run(args []string, demo bool) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.Bool("keep-logs", false, "Keep the cluster directory (logs, configs) after Ctrl-C.")
	exit := fs.Bool("exit", false, "Tear down right after the demo instead of waiting for Ctrl-C (exit status says whether it passed).")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	out := os.Stdout
	t0 := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{KeepDir: *keep, Progress: out})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "\ncluster: tearing down (pods, kubelets, containerd, control plane, mounts, cgroups, namespaces)")
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "cluster: teardown: %v\n", err)
		}
		if *keep {
			fmt.Fprintf(out, "cluster: logs kept in %s\n", c.Lab.LogDir())
		}
	}()
	failed := false
	if err := setup(ctx, c, out, t0, demo); err != nil {
		failed = true
		fmt.Fprintf(out, "\ncluster: FAILED: %v\n", err)
		fmt.Fprintf(out, "cluster: process logs are in %s; pod logs in %s/n*/pod-logs\n", c.Lab.LogDir(), c.Dir)
	}
	if pods, err := c.Kubectl(ctx, "get", "pods", "-A", "-o", "wide"); err == nil {
		fmt.Fprintf(out, "\n== kubectl get pods -A -o wide\n%s", lab.Indent(pods))
	}
	if *exit {
		if failed {
			return fmt.Errorf("demo failed")
		}
		return nil
	}
	printUsage(c, out)
	<-ctx.Done()
	return nil
}

func setup(ctx context.Context, c *cluster.Cluster, out io.Writer, t0 time.Time, demo bool) error {
	t1 := time.Now()
	fmt.Fprintf(out, "cluster: kubectl apply --server-side -k %s (config/default with image %s)\n", rel(cluster.Overlay()), cluster.BgplbImage)
	if err := c.InstallBgplb(ctx); err != nil {
		return err
	}
	leader, _ := c.LeaderPod(ctx)
	fmt.Fprintf(out, "cluster: bgplb ready %s after apply (%s after start): controller rolled out, leader %s, speaker on every node\n",
		since(t1), since(t0), leader)
	samples := filepath.Join(framework.RepoRoot(), "config", "samples", "lab")
	fmt.Fprintf(out, "cluster: kubectl apply -k %s\n", rel(samples))
	if _, err := c.ApplyKustomize(ctx, samples); err != nil {
		return err
	}
	if !demo {
		return nil
	}
	const ns, name = "demo", "hello"
	fmt.Fprintf(out, "\n== Deployment %s/%s (3 replicas of %s, spread over the nodes) behind a dual-stack LoadBalancer Service\n", ns, name, cluster.BackendImage)
	if _, err := c.ApplyYAML(ctx, cluster.BackendManifest(ns, name, 3)); err != nil {
		return err
	}
	if _, err := c.Kubectl(ctx, "-n", ns, "rollout", "status", "deployment/"+name, "--timeout=3m"); err != nil {
		return err
	}
	if err := c.WaitEndpoints(ctx, ns, name, 3, time.Minute); err != nil {
		return err
	}
	addrs, err := c.ServiceAddresses(ctx, ns, name, 2, time.Minute)
	if err != nil {
		return err
	}
	svc, _ := c.Kubectl(ctx, "-n", ns, "get", "svc", name, "-o", "wide")
	fmt.Fprintf(out, "   external addresses: %s\n%s", lab.JoinAddrs(addrs), lab.Indent(svc))
	for _, a := range addrs {
		hops, err := c.WaitRoutes(ctx, a, time.Minute)
		if err != nil {
			return err
		}
		p := netip.PrefixFrom(a, a.BitLen())
		for _, r := range c.Lab.Routers() {
			var named []string
			for _, h := range hops[r.Name] {
				named = append(named, fmt.Sprintf("%s (%s)", h, c.NodeOf(h)))
			}
			fmt.Fprintf(out, "   %s (AS %d) kernel route %s: ECMP via %s\n", r.Name, r.ASN(), p, strings.Join(named, ", "))
		}
	}
	r1 := c.Lab.Router("r1")
	if text, err := r1.Vtysh(fmt.Sprintf("show bgp ipv4 unicast %s/32", addrs[0])); err == nil {
		fmt.Fprintf(out, "\n== r1: vtysh -c 'show bgp ipv4 unicast %s/32'\n%s", addrs[0], lab.Indent(text))
	}

	// The routers may route the addresses a moment before every kube-proxy
	// has programmed them (they sync at most once a second): wait for
	// every node's rules, then every request must succeed.
	t := time.Now()
	if err := c.WaitProxied(ctx, ns, name, time.Minute); err != nil {
		return err
	}
	cl := c.Lab.Client()
	fmt.Fprintf(out, "\n== HTTP from the client namespace %s (%s, %s) through both routers, kube-proxy and the pods\n", cl.Netns, cl.Addr4, cl.Addr6)
	fmt.Fprintf(out, "   (kube-proxy had programmed the addresses and every endpoint on every node %s after the routes)\n", since(t))
	for _, a := range addrs {
		url := lab.ServiceURL(a, 80)
		counts := map[string]int{}
		for i := 0; i < 12; i++ {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			body, err := cl.HTTPGet(rctx, url)
			cancel()
			if err != nil {
				return err
			}
			body = strings.TrimSpace(body)
			if i < 4 {
				fmt.Fprintf(out, "   GET %s -> %s\n", url, body)
			}
			counts[field(body, "node")+"/"+field(body, "pod")]++
		}
		fmt.Fprintf(out, "   12 connections to %s answered by (node/pod=count): %s\n", a, lab.DescribeCounts(counts))
	}
	return nil
}

func field(body, key string) string {
	for _, f := range strings.Fields(body) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return "?"
}

func printUsage(c *cluster.Cluster, out io.Writer) {
	r1 := c.Lab.Router("r1")
	fmt.Fprintf(out, `
== The cluster is up. Try, as root, in another terminal:
   export KUBECONFIG=%s
   %s get nodes -o wide
   %s get ippools,bgppeers,bgpadvertisements,bgpnodestatuses
   %s -n bgplb-system logs ds/bgplb-speaker
   vtysh --vty_socket %s -c 'show bgp summary'
   ip netns exec %s curl -s http://<address>/      # the client behind both routers
   ctr -a %s -n k8s.io containers ls               # node n1's containerd
   logs: processes %s, pods %s/n*/pod-logs
   Press Ctrl-C here to tear it all down.
`, c.Kubeconfig, c.KubectlPath, c.KubectlPath, c.KubectlPath, r1.Dir(), c.Lab.Client().Netns,
		c.Nodes[0].ContainerdSock(), c.Lab.LogDir(), c.Dir)
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

func rel(p string) string {
	if r, err := filepath.Rel(framework.RepoRoot(), p); err == nil {
		return r
	}
	return p
}
