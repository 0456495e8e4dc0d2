package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bgplb/bgplb/test/lab"
)

// cgroupPrefix starts the cgroup root of every node (/bgplb-lab-n1 in every
// hierarchy), so a crashed run's cgroups can be found.
const cgroupPrefix = "bgplb-lab-"

// hostPaths are the shared paths a kubelet, containerd or CNI creates
// whatever their configuration. The cluster removes the ones that did not
// exist before it started.
var hostPaths = []string{
	"/var/lib/kubelet/device-plugins",
	"/var/lib/cni",
	"/run/containerd",
	"/var/log/containers",
	"/var/log/pods",
	"/usr/libexec/kubernetes",
}

// state is what a crashed run left to clean, kept in RunDir.
type state struct {
	Dir       string   `json:"dir"`
	Nodes     []string `json:"nodes"`
	HostPaths []string `json:"hostPaths"` // created by the cluster: remove
}

func statePath(runDir string) string { return filepath.Join(runDir, "cluster.json") }

func readState(runDir string) (*state, error) {
	b, err := os.ReadFile(statePath(runDir))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(runDir), err)
	}
	return &s, nil
}

func writeState(runDir string, s *state) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	return os.WriteFile(statePath(runDir), b, 0o644)
}

// missingHostPaths returns, for every host path, its topmost ancestor that
// does not exist yet (what the cluster will have created).
func missingHostPaths() []string {
	var out []string
	for _, p := range hostPaths {
		top := ""
		for d := p; d != "/" && d != "."; d = filepath.Dir(d) {
			if _, err := os.Lstat(d); err == nil {
				break
			}
			top = d
		}
		if top != "" && !contains(out, top) {
			out = append(out, top)
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// cleanupState removes what s describes: container processes in the nodes'
// cgroups and containerd shims of dir, mounts under dir, the cgroups, the
// host paths the cluster created and dir itself.
func cleanupState(s *state, removeDir bool) error {
	var errs []error
	killContainers(s.Dir, s.Nodes)
	if err := unmountUnder(s.Dir); err != nil {
		errs = append(errs, err)
	}
	for _, n := range s.Nodes {
		if err := removeCgroups(cgroupRootName(n)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range s.HostPaths {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	if removeDir && s.Dir != "" {
		if m := mountsUnder(s.Dir); len(m) > 0 {
			errs = append(errs, fmt.Errorf("not removing %s: still mounted: %v", s.Dir, m))
		} else if err := os.RemoveAll(s.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killContainers SIGKILLs every process in the nodes' cgroups (the pods'
// containers) and every containerd shim serving a containerd under dir.
func killContainers(dir string, nodes []string) {
	var pids []int
	for _, n := range nodes {
		pids = append(pids, cgroupPIDs(cgroupRootName(n))...)
	}
	if dir != "" {
		pids = append(pids, shimPIDs(dir)...)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) && alive(pid) {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// State is the field after the parenthesised command.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// cgroupDirs returns name's directory in every mounted hierarchy.
func cgroupDirs(name string) []string {
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	var out []string
	for _, h := range hs {
		out = append(out, filepath.Join(h, name))
	}
	// cgroup v2 only: the root itself is the hierarchy.
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		out = append(out, filepath.Join("/sys/fs/cgroup", name))
	}
	return out
}

// cgroupPIDs lists the processes in cgroup name (and below) of every hierarchy.
func cgroupPIDs(name string) []int {
	seen := map[int]bool{}
	var pids []int
	for _, d := range cgroupDirs(name) {
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
					seen[pid] = true
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// Processes returns the PIDs of the processes whose command line (argv)
// satisfies match.
func Processes(match func(args []string) bool) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		if match(strings.Split(string(b), "\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// shimPIDs finds containerd-shim processes whose command line names a
// containerd socket under dir.
func shimPIDs(dir string) []int {
	return Processes(func(args []string) bool {
		return strings.Contains(filepath.Base(args[0]), "containerd-shim") &&
			slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, dir+"/") })
	})
}

// createCgroups makes name in every v1 hierarchy (kubelet requires its
// cgroupRoot to exist), with cpuset.cpus/mems copied from the parent.
func createCgroups(name string) error {
	for _, d := range cgroupDirs(name) {
		h := filepath.Dir(d)
		if filepath.Base(h) == "unified" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", d, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
					return fmt.Errorf("cgroup %s: %w", d, err)
				}
			}
		}
	}
	return nil
}

// removeCgroups removes name and everything below it in every hierarchy,
// deepest first; it retries while exiting processes leave.
func removeCgroups(name string) error {
	var errs []error
	for _, d := range cgroupDirs(name) {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		var err error
		for i := 0; i < 50; i++ {
			if err = rmdirTree(d); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func rmdirTree(d string) error {
	var dirs []string
	_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var last error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
			last = fmt.Errorf("rmdir %s: %w", dirs[i], err)
		}
	}
	return last
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		mp := unescapeMount(fs[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	// Later mounts may stack on earlier ones: undo in reverse order, deepest first.
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount at or below dir (the kubelet's own
// bind mount of its root dir, pod volumes, container rootfs and shm,
// pod network namespaces).
func unmountUnder(dir string) error {
	if dir == "" {
		return nil
	}
	for i := 0; i < 5; i++ {
		ms := mountsUnder(dir)
		if len(ms) == 0 {
			return nil
		}
		for _, m := range ms {
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
	}
	if ms := mountsUnder(dir); len(ms) > 0 {
		return fmt.Errorf("still mounted under %s: %v", dir, ms)
	}
	return nil
}

// CleanupStale removes what a crashed cluster left behind: the lab's
// processes, namespaces and links (lab.CleanupStale), then containers,
// shims, mounts, cgroups and host paths recorded in runDir ("" =
// lab.DefaultRunDir). Start does the same by itself.
func CleanupStale(ctx context.Context, runDir string) error {
	if runDir == "" {
		runDir = lab.DefaultRunDir
	}
	if err := lab.CleanupStale(ctx, runDir); err != nil {
		return err
	}
	s, err := readState(runDir)
	if err != nil || s == nil {
		return err
	}
	if err := cleanupState(s, true); err != nil {
		return err
	}
	return os.Remove(statePath(runDir))
}

// Leftovers lists what a stopped cluster left behind: lab namespaces and
// processes, the nodes' cgroups, mounts under its dir, the host paths it
// created. Empty after a clean Stop.
func (c *Cluster) Leftovers() []string {
	out, _ := lab.Leftovers(c.opts.RunDir)
	for _, n := range c.Nodes {
		for _, d := range cgroupDirs(cgroupRootName(n.Name)) {
			if _, err := os.Stat(d); err == nil {
				out = append(out, "cgroup "+d)
			}
		}
		if pids := shimPIDs(n.Dir); len(pids) > 0 {
			out = append(out, fmt.Sprintf("containerd shims of %s: %v", n.Name, pids))
		}
	}
	for _, m := range mountsUnder(c.Dir) {
		out = append(out, "mount "+m)
	}
	if c.st != nil {
		for _, p := range c.st.HostPaths {
			if _, err := os.Lstat(p); err == nil {
				out = append(out, "host path "+p)
			}
		}
	}
	return out
}
