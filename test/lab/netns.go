package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsDir is where "ip netns" keeps its named namespaces.
const netnsDir = "/run/netns"

// InNetns runs fn on an OS thread that has joined the named network
// namespace ("" is the current one). Sockets created inside fn stay in that
// namespace after it returns and may be used from any goroutine, which is how
// the lab dials and listens inside namespaces without helper processes.
// fn must not start goroutines that need the namespace.
func InNetns(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	target, err := os.Open(netnsDir + "/" + name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer target.Close()

	errc := make(chan error, 1)
	// A fresh goroutine: if restoring the thread fails we exit it while still
	// locked, and the runtime then discards the thread instead of reusing it
	// in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("restore netns after %s: %w", name, err)
			return // thread stays locked and dies with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// run runs a command and returns its stdout; stderr goes into the error.
func run(ctx context.Context, stdin string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// ipBatch feeds commands to one "ip -batch" run in namespace ns ("" = root).
// It stops at the first failing command.
func ipBatch(ctx context.Context, ns string, cmds []string) error {
	if len(cmds) == 0 {
		return nil
	}
	argv := []string{"ip"}
	if ns != "" {
		argv = append(argv, "-n", ns)
	}
	argv = append(argv, "-batch", "-")
	_, err := run(ctx, strings.Join(cmds, "\n")+"\n", argv...)
	if err != nil {
		return fmt.Errorf("configure netns %q: %w", ns, err)
	}
	return nil
}

// sysctls sets sysctls inside namespace ns by writing /proc/sys from a thread in it.
func sysctls(ns string, kv map[string]string) error {
	return InNetns(ns, func() error {
		for k, v := range kv {
			path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
			if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s in %s: %w", k, v, ns, err)
			}
		}
		return nil
	})
}

// listNetns returns the named network namespaces that start with prefix.
func listNetns(prefix string) ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", netnsDir, err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// rootLinks returns the root namespace's interfaces whose names start with prefix.
func rootLinks(prefix string) ([]string, error) {
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
