package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a long-running process the lab started, in a namespace or on the
// host. Its output goes to LogPath. It is recorded in the run directory until
// it exits, so a crashed test run's processes are killed at the next start.
type Proc struct {
	// Name is unique within the lab ("r1-bgpd", "n1-speaker").
	Name    string
	Netns   string // "" for the root namespace
	PID     int
	LogPath string

	cmd     *exec.Cmd
	record  string
	done    chan struct{}
	waitErr error
	logFile *os.File
}

// ProcSpec describes a process to start.
type ProcSpec struct {
	// Name is unique within the lab and names the log file (<Name>.log).
	Name string
	Argv []string
	// Env is added to the lab process's environment.
	Env []string
	// Dir is the working directory (default the lab dir).
	Dir string
	// Stdin, when set, is the process's standard input.
	Stdin io.Reader
}

// Cmd returns the underlying command (already started).
func (p *Proc) Cmd() *exec.Cmd { return p.cmd }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error.
func (p *Proc) Wait() error { <-p.done; return p.waitErr }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process (SIGSTOP freezes it, SIGCONT thaws, SIGKILL kills).
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return fmt.Errorf("signal %s: %s already exited", sig, p.Name)
	}
	if err := syscall.Kill(p.PID, sig); err != nil {
		return fmt.Errorf("signal %s to %s (pid %d): %w", sig, p.Name, p.PID, err)
	}
	return nil
}

// Stop sends SIGTERM to the process group and SIGKILL after grace; it
// returns once the process is gone. A frozen process is thawed first.
func (p *Proc) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = syscall.Kill(-p.PID, syscall.SIGTERM)
	_ = syscall.Kill(-p.PID, syscall.SIGCONT)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("stop %s (pid %d): still running after SIGKILL", p.Name, p.PID)
	}
}

// ProcRegistry records started processes as files in Dir, one per process:
// "pid starttime" and the argv, so that only processes this lab (or a
// harness built on it) started are ever killed: the start time guards
// against PID reuse.
type ProcRegistry struct {
	Dir string
}

// startProc starts spec inside namespace ns ("" = root) with output to
// logDir/<name>.log, in its own process group so a terminal's Ctrl-C reaches
// only the test binary, which then tears the lab down in order.
func (l *Lab) startProc(ns string, spec ProcSpec) (*Proc, error) {
	if spec.Name == "" || strings.ContainsAny(spec.Name, "/ ") || len(spec.Argv) == 0 {
		return nil, fmt.Errorf("start process: need a plain name and argv, got %q %q", spec.Name, spec.Argv)
	}
	l.mu.Lock()
	if l.procs[spec.Name] != nil && !l.procs[spec.Name].Exited() {
		l.mu.Unlock()
		return nil, fmt.Errorf("start %s: a process with that name is running", spec.Name)
	}
	l.mu.Unlock()

	argv := spec.Argv
	if ns != "" {
		// ip netns exec execs the command, so the PID is the command's own.
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	logPath := filepath.Join(l.LogDir(), spec.Name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	fmt.Fprintf(f, "=== %s start: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = f, f, spec.Stdin
	cmd.Dir = spec.Dir
	if cmd.Dir == "" {
		cmd.Dir = l.dir
	}
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &Proc{Name: spec.Name, Netns: ns, PID: cmd.Process.Pid, LogPath: logPath, cmd: cmd, done: make(chan struct{}), logFile: f}
	p.record, err = l.registry.Add(p.Name, p.PID, argv)
	if err != nil {
		_ = syscall.Kill(-p.PID, syscall.SIGKILL)
		_ = cmd.Wait()
		f.Close()
		return nil, err
	}
	go func() {
		p.waitErr = cmd.Wait()
		fmt.Fprintf(f, "=== %s exit: %v\n", time.Now().Format(time.RFC3339Nano), cmd.ProcessState)
		f.Close()
		_ = os.Remove(p.record)
		close(p.done)
	}()
	l.mu.Lock()
	l.procs[p.Name] = p
	l.order = append(slices.DeleteFunc(l.order, func(n string) bool { return n == p.Name }), p.Name)
	l.mu.Unlock()
	l.log.V(1).Info("started", "name", p.Name, "pid", p.PID, "netns", ns)
	return p, nil
}

// Start runs a long-running process in the root namespace (e.g. the
// controller or the API server) with its output in the lab's log dir.
func (l *Lab) Start(spec ProcSpec) (*Proc, error) { return l.startProc("", spec) }

// Add records pid under name and returns the record's path.
func (r ProcRegistry) Add(name string, pid int, argv []string) (string, error) {
	st, err := ReadProcStat(pid)
	if err != nil {
		return "", fmt.Errorf("record %s: %w", name, err)
	}
	path := filepath.Join(r.Dir, name+".pid")
	body := fmt.Sprintf("%d %d\n%s\n", pid, st.Start, strings.Join(argv, " "))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		return "", fmt.Errorf("record %s: %w", name, err)
	}
	return path, nil
}

// KillAll kills every recorded process that is still the process that was
// recorded (same PID and start time) and removes the records.
func (r ProcRegistry) KillAll() error {
	ents, err := os.ReadDir(r.Dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read process registry: %w", err)
	}
	var errs []error
	var victims []int
	for _, e := range ents {
		path := filepath.Join(r.Dir, e.Name())
		if !strings.HasSuffix(e.Name(), ".pid") {
			continue
		}
		pid, st, err := readRecord(path)
		if err != nil {
			errs = append(errs, err)
			_ = os.Remove(path)
			continue
		}
		if cur, err := ReadProcStat(pid); err == nil && cur.Start == st {
			// Own process group (Setpgid) first, then the process itself.
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			victims = append(victims, pid)
		}
		_ = os.Remove(path)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range victims {
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if processAlive(pid) {
			errs = append(errs, fmt.Errorf("stale process %d survived SIGKILL", pid))
		}
	}
	return errors.Join(errs...)
}

// Alive lists recorded processes that still run.
func (r ProcRegistry) Alive() ([]int, error) {
	ents, err := os.ReadDir(r.Dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		pid, st, err := readRecord(filepath.Join(r.Dir, e.Name()))
		if err != nil {
			continue
		}
		if cur, err := ReadProcStat(pid); err == nil && cur.Start == st {
			out = append(out, pid)
		}
	}
	return out, nil
}

func readRecord(path string) (pid int, start uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", path, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if _, err := fmt.Sscanf(line, "%d %d", &pid, &start); err != nil {
		return 0, 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return pid, start, nil
}

// killFromPidFiles kills the FRR daemons of an earlier lab dir from their
// pid files (<dir>/<router>/<daemon>.pid), but only processes whose command
// line names that dir: a reused PID never hits a stranger.
func killFromPidFiles(dir string) error {
	if !filepath.IsAbs(dir) || dir == "/" {
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.pid"))
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmdline), dir+"/") {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
		deadline := time.Now().Add(5 * time.Second)
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if processAlive(pid) {
			errs = append(errs, fmt.Errorf("stale daemon %d (%s) survived SIGKILL", pid, f))
		}
	}
	return errors.Join(errs...)
}

// ProcStat is what the lab reads of /proc/PID/stat.
type ProcStat struct {
	Comm  string // command name
	State byte   // R, S, Z, ...
	PPID  int
	Ticks int64  // user + system CPU time, in clock ticks
	Start uint64 // start time, in clock ticks since boot
	RSS   int64  // resident set size, in bytes
}

// ReadProcStat reads /proc/PID/stat.
func ReadProcStat(pid int) (ProcStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStat{}, err
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	s := string(b)
	open, i := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || i < open {
		return ProcStat{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[11] and f[12] fields
	// 14 and 15 (utime, stime), f[19] field 22 (starttime), f[21] field 24
	// (rss, in pages).
	if len(f) < 22 || len(f[0]) != 1 {
		return ProcStat{}, fmt.Errorf("parse /proc/%d/stat: short", pid)
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	start, err4 := strconv.ParseUint(f[19], 10, 64)
	pages, err5 := strconv.ParseInt(f[21], 10, 64)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return ProcStat{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return ProcStat{Comm: s[open+1 : i], State: f[0][0], PPID: ppid, Ticks: ut + st, Start: start,
		RSS: pages * int64(os.Getpagesize())}, nil
}

// ResidentMiB is a process's resident memory for reports ("83 MiB"), or
// "unknown" when /proc cannot tell.
func ResidentMiB(pid int) string {
	st, err := ReadProcStat(pid)
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.0f MiB", float64(st.RSS)/(1<<20))
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	st, err := ReadProcStat(pid)
	return err == nil && st.State != 'Z'
}

// stopAll stops the lab's processes in reverse start order.
func (l *Lab) stopAll(grace time.Duration) error {
	l.mu.Lock()
	var ps []*Proc
	for i := len(l.order) - 1; i >= 0; i-- {
		if p := l.procs[l.order[i]]; p != nil {
			ps = append(ps, p)
		}
	}
	l.order, l.procs = nil, map[string]*Proc{}
	l.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Stop(grace); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
