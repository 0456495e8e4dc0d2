package labcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/bgplb/bgplb/test/lab"
)

// recordEnvtestChildren records this process's children running exe (the
// envtest API server and etcd, which envtest starts itself) in the lab's
// process registry format, so a run that crashed (SIGKILL, go test
// timeout) does not leave an API server behind.
func recordEnvtestChildren(reg lab.ProcRegistry, exe string) error {
	if err := os.MkdirAll(reg.Dir, 0o755); err != nil {
		return fmt.Errorf("labcluster: %w", err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("labcluster: %w", err)
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || target != exe {
			continue
		}
		if st, err := lab.ReadProcStat(pid); err != nil || st.PPID != self {
			continue
		}
		if _, err := reg.Add(strconv.Itoa(pid), pid, []string{exe}); err != nil {
			return fmt.Errorf("labcluster: %w", err)
		}
	}
	return nil
}

// CleanupStale removes what a crashed lab cluster left behind: its API
// server and etcd, then the lab's processes, namespaces and links (see
// lab.CleanupStale). runDir "" is lab.DefaultRunDir. It fails, touching
// nothing, while a lab runs.
func CleanupStale(ctx context.Context, runDir string) error {
	if runDir == "" {
		runDir = lab.DefaultRunDir
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("labcluster: %w", err)
	}
	// The lab's lock says whether a lab runs; hold it while killing.
	f, err := os.OpenFile(filepath.Join(runDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("labcluster: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("labcluster: a running lab holds %s: %w", f.Name(), err)
	}
	killErr := lab.ProcRegistry{Dir: filepath.Join(runDir, "envtest")}.KillAll()
	f.Close() // releases the lock for lab.CleanupStale
	return errors.Join(killErr, lab.CleanupStale(ctx, runDir))
}

// Leftovers lists what this cluster started or created that still existed
// right after Stop: its processes (FRR daemons, controller, speakers, API
// server, etcd), namespaces and management links. It is checked the moment
// the lab is down, by this lab's own names, so a lab that starts next
// (waiting for the lock, reusing the names) is not mistaken for a leftover.
func (c *Cluster) Leftovers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.left)
}

func (c *Cluster) findLeftovers() []string {
	var out []string
	var procs []*lab.Proc
	c.mu.Lock()
	procs = append(procs, c.controller)
	for _, p := range c.speakers {
		procs = append(procs, p)
	}
	c.mu.Unlock()
	for _, r := range c.Lab.Routers() {
		for _, d := range []string{"zebra", "bgpd", "bfdd"} {
			procs = append(procs, r.Daemon(d))
		}
	}
	procs = append(procs, c.frrK8sProcs()...)
	for _, p := range procs {
		if p != nil && !p.Exited() {
			out = append(out, fmt.Sprintf("process %s (pid %d)", p.Name, p.PID))
		}
	}
	ents, _ := os.ReadDir(c.envtestPIDs.Dir)
	for _, e := range ents {
		out = append(out, "envtest process record "+e.Name())
	}
	var nss []string
	for _, r := range c.Lab.Routers() {
		nss = append(nss, r.Netns)
	}
	for _, n := range c.Lab.Nodes() {
		nss = append(nss, n.Netns)
	}
	nss = append(nss, c.Lab.Client().Netns)
	for _, ns := range nss {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			out = append(out, "netns "+ns)
		}
	}
	links := []string{lab.MgmtBridge}
	for _, n := range c.Lab.Nodes() {
		links = append(links, "bgplb-m-"+n.Name) // the lab's management veths
	}
	for _, l := range links {
		if _, err := os.Stat("/sys/class/net/" + l); err == nil {
			out = append(out, "link "+l)
		}
	}
	sort.Strings(out)
	return out
}
