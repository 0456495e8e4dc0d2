// Command bgplb-lab runs bgplb on the network-namespace lab by hand. It is
// test tooling and lives under test/ so the product binary (cmd/bgplb)
// imports nothing of the lab or envtest; "make demo-lab" builds and runs it.
//
//	bgplb-lab demo [-nodes N] [-bin BGPLB] [-samples DIR] [-keep-logs]   # Ctrl-C tears it down
//	bgplb-lab up [-nodes N] [-dir DIR]     # the bare network lab, no API server or bgplb
//	bgplb-lab cleanup                      # remove what a crashed lab left behind
//
// Build it without -trimpath: the lab finds config/ (CRDs, RBAC, samples)
// from its source paths.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

const usage = `bgplb-lab runs bgplb on a whole bare-metal cluster on this machine: two FRR
routers, three nodes and a client in network namespaces, a real API server,
the real controller and one real speaker per node. Needs root and FRR
(hack/lab-deps.sh installs it).

Usage:
  bgplb-lab demo [flags]   start the lab with a demo Service; Ctrl-C tears it down
  bgplb-lab up [flags]     start only the network lab (routers, nodes, client); Ctrl-C tears it down
  bgplb-lab cleanup        remove what a crashed lab left behind

Run "bgplb-lab <command> -h" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "demo":
		err = runDemo(args)
	case "up":
		err = runUp(args)
	case "cleanup":
		err = runCleanup()
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "bgplb-lab: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "bgplb-lab %s: %v\n", os.Args[1], err)
		}
		os.Exit(1)
	}
}

// runCleanup removes what a crashed lab (with or without its API server)
// left behind; it refuses while a lab runs.
func runCleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return labcluster.CleanupStale(ctx, "")
}

// runUp brings up the network lab alone: FRR routers, node namespaces and
// the client, with no API server, controller or speakers.
func runUp(args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "Number of nodes.")
	dir := fs.String("dir", "", "Lab directory (default a new temporary directory, removed on exit).")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := lab.Check(); err != nil {
		return err
	}
	log := funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{})
	l, err := lab.New(lab.Options{Nodes: *nodes, Dir: *dir, Log: log})
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := l.Up(ctx); err != nil {
		return errors.Join(err, l.Down())
	}
	fmt.Printf("lab up in %s; vtysh --vty_socket %s/r1 ...; Ctrl-C to tear down\n", l.Dir(), l.Dir())
	<-sig
	return l.Down()
}
