// Command bgplb is the single binary of bgplb: the IPAM controller, the
// per-node BGP speaker, and a version command.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `bgplb gives LoadBalancer Services external addresses on bare metal.

Usage:
  bgplb controller [flags]   allocate addresses from IPPools (Deployment)
  bgplb speaker [flags]      announce addresses over BGP from this node (DaemonSet)
  bgplb version              print the version
  bgplb migrate metallb      print bgplb objects equivalent to a MetalLB configuration

Run "bgplb <command> -h" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "controller":
		err = runController(args)
	case "speaker":
		err = runSpeaker(args)
	case "version", "--version", "-version":
		fmt.Println(versionString())
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		if lab, ok := extraCommands[cmd]; ok {
			err = lab(args)
			break
		}
		fmt.Fprintf(os.Stderr, "bgplb: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bgplb %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// extraCommands holds subcommands registered by other files of this package
// (such as the lab), so main stays the same as they are added.
var extraCommands = map[string]func(args []string) error{}

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + info.GoVersion
	}
	return "bgplb " + v
}
