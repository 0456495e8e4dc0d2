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

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

// runDemo starts the lab cluster, shows a demo Service working end to end,
// and keeps everything up until SIGINT or SIGTERM.
func runDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "Number of nodes.")
	bin := fs.String("bin", "", "bgplb binary the controller and speakers run (default $BGPLB_BIN, else built from ./cmd/bgplb).")
	samples := fs.String("samples", "config/samples/lab", "Directory of objects to apply once the API server is up.")
	keep := fs.Bool("keep-logs", false, "Keep the lab directory (logs, configs) after Ctrl-C.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := lab.Check(); err != nil {
		return fmt.Errorf("%w\n(as root, hack/lab-deps.sh installs FRR, iproute2 and ping)", err)
	}
	abs, err := filepath.Abs(*samples)
	if err != nil {
		return err
	}

	// envtest logs through controller-runtime; the demo shows its own progress.
	ctrllog.SetLogger(logr.Discard())
	// Ctrl-C during start-up stops what was started; afterwards it ends the demo.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	out := os.Stdout
	c, err := labcluster.Start(ctx, labcluster.Options{
		Nodes: *nodes, Bin: *bin, Samples: abs, KeepDir: *keep, Progress: out,
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "\nlab: tearing down (processes, API server, namespaces)")
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "lab: teardown: %v\n", err)
		}
		if *keep {
			fmt.Fprintf(out, "lab: logs kept in %s\n", c.Lab.LogDir())
		}
	}()
	if err := demoService(ctx, c, out); err != nil {
		fmt.Fprintf(out, "\nlab: the demo Service did not come up as expected: %v\n", err)
		fmt.Fprintf(out, "lab: process logs are in %s; the lab stays up for a look.\n", c.Lab.LogDir())
	}
	printUsage(c, out)
	<-ctx.Done()
	return nil
}

// demoService creates demo/hello with endpoints on every node, waits until
// the routers route it, and shows the routers' view and real HTTP answers.
func demoService(ctx context.Context, c *labcluster.Cluster, out io.Writer) error {
	const ns, name = "demo", "hello"
	if err := c.EnsureNamespace(ctx, ns); err != nil {
		return err
	}
	svc, err := c.CreateService(ctx, labcluster.ServiceOptions{Namespace: ns, Name: name, Families: labcluster.DualStack})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n== Service %s/%s: type LoadBalancer, dual-stack, port 80, ready endpoints on %s\n",
		ns, name, strings.Join(c.NodeNames(), ", "))
	fmt.Fprintln(out, "   (no kubelet or kube-proxy runs here: the lab writes the EndpointSlices and each node answers for the address itself)")

	var addrs []netip.Addr
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for len(addrs) < 2 {
		cur := &corev1.Service{}
		if err := c.Client.Get(wctx, client.ObjectKeyFromObject(svc), cur); err == nil {
			addrs = labcluster.ServiceAddresses(cur)
		}
		if len(addrs) >= 2 {
			break
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("no external addresses after 2 minutes (got %v); is the controller running?", addrs)
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "   external addresses: %s\n", lab.JoinAddrs(addrs))
	for _, a := range addrs {
		if _, err := c.Serve(a, 80, c.NodeNames()...); err != nil {
			return err
		}
	}

	// Wait until both routers have every node as a next hop.
	for _, a := range addrs {
		for _, r := range c.Lab.Routers() {
			for {
				hops, err := r.KernelRoutes(labcluster.HostPrefix(a))
				if err == nil && len(hops) == len(c.Lab.Nodes()) {
					break
				}
				select {
				case <-wctx.Done():
					return fmt.Errorf("%s has %v as next hops for %s after 2 minutes; are the speakers running?", r.Name, hops, a)
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}
	for _, a := range addrs {
		p := labcluster.HostPrefix(a)
		for _, r := range c.Lab.Routers() {
			fam := "ipv4"
			if a.Is6() {
				fam = "ipv6"
			}
			cmd := fmt.Sprintf("show bgp %s unicast %s", fam, p)
			text, _ := r.Vtysh(cmd)
			fmt.Fprintf(out, "\n== %s (AS %d): vtysh -c '%s'\n%s", r.Name, r.ASN(), cmd, lab.Indent(text))
			hops, _ := r.KernelRoutes(p)
			var named []string
			for _, h := range hops {
				named = append(named, fmt.Sprintf("%s (%s)", h, c.NodeOf(h)))
			}
			fmt.Fprintf(out, "   kernel route %s in %s: ECMP via %s\n", p, r.Netns, strings.Join(named, ", "))
		}
	}

	fmt.Fprintf(out, "\n== HTTP from the client namespace %s (%s), through the routers\n", c.Lab.Client().Netns, c.Lab.Client().Addr4)
	for _, a := range addrs {
		url := lab.ServiceURL(a, 80)
		body, err := c.Lab.Client().HTTPGet(ctx, url)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "   GET %s -> answered by node %s\n", url, strings.TrimSpace(body))
		counts, err := c.Lab.Client().CountAnswers(ctx, url, 30)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "   30 more connections spread by ECMP: %s\n", lab.DescribeCounts(counts))
	}
	return nil
}

func printUsage(c *labcluster.Cluster, out io.Writer) {
	r1 := c.Lab.Router("r1")
	fmt.Fprintf(out, `
== The lab is up. Try, as root, in another terminal:
   export KUBECONFIG=%s
   %s get ippools,bgppeers,bgpadvertisements,bgpnodestatuses
   %s get svc -n demo hello -o wide
   vtysh --vty_socket %s -c 'show bgp summary'
   ip -n %s route show root %s
   ip netns exec %s <command>        # e.g. curl, from the client behind both routers
   logs of every process (FRR, controller, speakers): %s
   Press Ctrl-C here to tear it all down.
`, c.Kubeconfig, c.KubectlPath, c.KubectlPath, r1.Dir(), r1.Netns, lab.Pool4, c.Lab.Client().Netns, c.Lab.LogDir())
}
