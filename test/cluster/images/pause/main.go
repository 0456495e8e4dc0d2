// Command pause is the sandbox ("infra") container of the real-node test
// cluster's pods: it holds the pod's namespaces and waits for SIGTERM or
// SIGINT. It reaps zombies, as PID 1 of a pod with a shared PID namespace
// must. Built static and packed by hack/image (no registry to pull from).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	child := make(chan os.Signal, 1)
	signal.Notify(child, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			os.Exit(0)
		case <-child:
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
