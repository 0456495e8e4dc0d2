package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
)

// SkipEnv is the environment variable that turns missing prerequisites from
// a test failure into a skip: LAB=skip. With everything present the lab
// tests run regardless.
const SkipEnv = "LAB"

// Check lists what the lab needs and this machine lacks: root, iproute2 with
// netns support, ping, FRR's zebra, bgpd, bfdd and vtysh, and the frr user.
func Check() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (run the tests as root: namespaces, veths and FRR need it)")
	}
	for _, bin := range []string{"ip", "ping", "vtysh"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin+" in PATH (apt-get install -y iproute2 iputils-ping frr)")
		}
	}
	for _, d := range []string{"zebra", "bgpd", "bfdd"} {
		if _, err := os.Stat(filepath.Join(FRRDir, d)); err != nil {
			missing = append(missing, filepath.Join(FRRDir, d)+" (apt-get install -y frr)")
		}
	}
	if _, err := user.Lookup("frr"); err != nil {
		missing = append(missing, "user frr (apt-get install -y frr)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("lab prerequisites missing:\n  - %s\n(set %s=skip to skip lab tests instead)", strings.Join(missing, "\n  - "), SkipEnv)
	}
	return nil
}

// RequireLab fails t with the list of missing prerequisites, or skips it
// with that list when LAB=skip is set.
func RequireLab(t testing.TB) {
	t.Helper()
	if err := Check(); err != nil {
		if os.Getenv(SkipEnv) == "skip" {
			t.Skipf("%s=skip: %v", SkipEnv, err)
		}
		t.Fatal(err)
	}
}

// ForTest checks prerequisites (see RequireLab), brings a lab up and
// registers its teardown; on failure the logs and router state are written
// to the test log first. SIGINT/SIGTERM also tear it down.
func ForTest(t testing.TB, opts Options) *Lab {
	t.Helper()
	RequireLab(t)
	if opts.Log.GetSink() == nil {
		opts.Log = testr.NewWithInterface(t, testr.Options{})
	}
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop := l.DownOnSignal()
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			var b bytes.Buffer
			l.Dump(&b, 60)
			t.Log("lab state and logs:\n" + b.String())
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err := l.Up(ctx); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	return l
}

// DumpLogs writes the last tail lines (0: all) of every log in LogDir to w.
func (l *Lab) DumpLogs(w io.Writer, tail int) {
	ents, err := os.ReadDir(l.LogDir())
	if err != nil {
		fmt.Fprintf(w, "lab logs: %v\n", err)
		return
	}
	for _, e := range ents {
		p := filepath.Join(l.LogDir(), e.Name())
		fmt.Fprintf(w, "----- %s\n", p)
		lines, err := tailLines(p, tail)
		if err != nil {
			fmt.Fprintf(w, "(%v)\n", err)
			continue
		}
		for _, s := range lines {
			fmt.Fprintln(w, s)
		}
	}
}

// Dump writes the routers' BGP and BFD state, every namespace's addresses
// and routes, and the log tails to w: what a failed spec should print.
func (l *Lab) Dump(w io.Writer, tail int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fmt.Fprintf(w, "lab dir %s\n", l.dir)
	for _, r := range l.routers {
		for _, cmd := range []string{"show bgp summary", "show bgp ipv4 unicast", "show bgp ipv6 unicast", "show bfd peers brief"} {
			out, err := r.Vtysh(cmd)
			fmt.Fprintf(w, "----- %s: %s\n%s", r.Name, cmd, out)
			if err != nil {
				fmt.Fprintf(w, "(%v)\n", err)
			}
		}
	}
	for _, ns := range l.namespaces() {
		for _, argv := range [][]string{{"ip", "-br", "addr"}, {"ip", "route"}, {"ip", "-6", "route"}} {
			out, err := execIn(ctx, ns, argv...)
			fmt.Fprintf(w, "----- %s: %s\n%s", ns, strings.Join(argv, " "), out)
			if err != nil {
				fmt.Fprintf(w, "(%v)\n", err)
			}
		}
	}
	l.DumpLogs(w, tail)
}

func tailLines(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if n > 0 && len(lines) > 2*n {
			lines = slices.Clone(lines[len(lines)-n:])
		}
	}
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, sc.Err()
}

// Leftovers lists what of any lab still exists on the machine: namespaces
// named bgplb-lab-*, the management bridge and veths, and recorded
// processes still running. Empty after a clean Down.
func Leftovers(runDir string) ([]string, error) {
	if runDir == "" {
		runDir = DefaultRunDir
	}
	var out []string
	var errs []error
	nss, err := listNetns(Prefix)
	errs = append(errs, err)
	for _, ns := range nss {
		out = append(out, "netns "+ns)
	}
	links, err := rootLinks("bgplb-")
	errs = append(errs, err)
	for _, k := range links {
		out = append(out, "link "+k)
	}
	pids, err := ProcRegistry{Dir: filepath.Join(runDir, "procs")}.Alive()
	errs = append(errs, err)
	for _, p := range pids {
		out = append(out, fmt.Sprintf("process %d", p))
	}
	return out, errors.Join(errs...)
}
