// Command lab brings the bgplb network-namespace lab up by hand, or removes
// what a crashed lab left behind.
//
//	go run ./test/lab/cmd/lab up [-nodes N] [-dir DIR]   # Ctrl-C tears it down
//	go run ./test/lab/cmd/lab cleanup
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/bgplb/bgplb/test/lab"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lab up [-nodes N] [-dir DIR] | lab cleanup")
		os.Exit(2)
	}
	log := funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	switch os.Args[1] {
	case "cleanup":
		if err := lab.CleanupStale(ctx, ""); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "up":
		fs := flag.NewFlagSet("up", flag.ExitOnError)
		nodes := fs.Int("nodes", 3, "number of nodes")
		dir := fs.String("dir", "", "lab dir (default a new temp dir, removed on exit)")
		_ = fs.Parse(os.Args[2:])
		if err := lab.Check(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		l, err := lab.New(lab.Options{Nodes: *nodes, Dir: *dir, Log: log})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		if err := l.Up(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			_ = l.Down()
			os.Exit(1)
		}
		fmt.Printf("lab up in %s; vtysh --vty_socket %s/r1 ...; Ctrl-C to tear down\n", l.Dir(), l.Dir())
		<-sig
		if err := l.Down(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
