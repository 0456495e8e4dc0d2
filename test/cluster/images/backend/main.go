// Command backend is the real-node test cluster's demo backend: an HTTP
// server that answers every request with the pod and node serving it, read
// from the downward API (POD_NAME, NODE_NAME env; spec.nodeName, since a
// hostNetwork pod sees the machine's hostname, not the node's), e.g.
//
//	pod=hello-7d9c-abcde node=n2 ip=198.19.2.5
//
// On SIGTERM it reports not ready and keeps serving for -lameduck (2 s)
// before it closes, as a well-behaved server does: kube-proxy on every node
// drops a terminating endpoint within about a second, so a pod evicted by a
// drain or a rollout loses no connection.
//
// Built static and packed by hack/image.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("listen", ":8080", "address to serve HTTP on")
	lameduck := flag.Duration("lameduck", 2*time.Second, "how long to keep serving after SIGTERM, reporting not ready, so kube-proxy on every node drops this endpoint before the listener closes")
	flag.Parse()
	pod, node, ip := os.Getenv("POD_NAME"), os.Getenv("NODE_NAME"), os.Getenv("POD_IP")
	mux := http.NewServeMux()
	var stopping atomic.Bool
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if stopping.Load() {
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Connection", "close")
		fmt.Fprintf(w, "pod=%s node=%s ip=%s client=%s\n", pod, node, ip, r.RemoteAddr)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("backend pod=%s node=%s serving on %s", pod, node, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		stopping.Store(true)
		log.Printf("SIGTERM: serving %s more before closing", *lameduck)
		time.Sleep(*lameduck)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
