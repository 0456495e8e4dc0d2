package ipam_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/ipam"
	"github.com/bgplb/bgplb/test/bench/benchutil"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

// The controller binary started while the API server cannot be reached, as
// after losing its lease during an outage: it keeps running and healthy,
// and allocates once the API server answers. (It used to exit at once,
// and the kubelet's crash-loop back-off kept it down for up to five
// minutes after the API server came back.)
var _ = Describe("Controller started while the API server is unreachable", Ordered, func() {
	It("waits for the API server instead of exiting, then allocates", func() {
		bin, err := framework.Binary(GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		ns := newNamespace()
		createPool("apidown", []string{"198.51.100.176/30"})
		installNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.InstallNamespace}}
		if err := k8s.Create(ctx, installNS); err != nil && !apierrors.IsAlreadyExists(err) {
			Expect(err).NotTo(HaveOccurred())
		}
		createService(ns, "early", annotate(v1alpha1.AnnotationIPPool, "apidown"))
		controller.stop() // the binary is the only allocator here
		controller = nil
		DeferCleanup(func() { controller = startController(ipam.Options{DefaultClass: true}) })

		// The binary is given an address nothing listens on yet; a
		// forwarder to the API server opens it later.
		front, err := benchutil.FreeLoopbackAddr()
		Expect(err).NotTo(HaveOccurred())
		cfg := rest.CopyConfig(env.Config)
		cfg.Host = "https://" + front
		probe, err := benchutil.FreeLoopbackAddr()
		Expect(err).NotTo(HaveOccurred())
		child, err := benchutil.StartChild(cfg, bin, []string{"controller", "--leader-elect",
			"--leader-election-lease-duration=3s", "--leader-election-renew-deadline=2s",
			"--leader-election-retry-period=500ms", "--metrics-bind-address=0",
			"--health-probe-bind-address=" + probe}, filepath.Join(GinkgoT().TempDir(), "controller.log"))
		Expect(err).NotTo(HaveOccurred())
		stopForward := func() {}
		DeferCleanup(func() {
			child.Stop(15 * time.Second)
			stopForward()
		})

		healthy := func() error {
			body, err := benchutil.Get(ctx, probe, "/healthz")
			if err != nil {
				return err
			}
			return body.Close()
		}
		Eventually(healthy, 20*time.Second, 200*time.Millisecond).Should(Succeed(), "the controller should serve /healthz without the API server")
		Consistently(healthy, 8*time.Second, time.Second).Should(Succeed(), "the controller should keep running without the API server")
		Expect(ingressIPs(ns, "early")()).To(BeEmpty())

		apiserver, err := url.Parse(env.Config.Host)
		Expect(err).NotTo(HaveOccurred())
		stopForward = forward(front, apiserver.Host)
		at := time.Now()
		Eventually(ingressIPs(ns, "early"), time.Minute, 200*time.Millisecond).Should(HaveLen(1))
		AddReportEntry("API server reachable -> first address", time.Since(at).Round(time.Millisecond).String())
	})
})

// forward accepts TCP connections on addr and relays each to target, until
// the returned function is called.
func forward(addr, target string) func() {
	GinkgoHelper()
	l, err := net.Listen("tcp", addr)
	Expect(err).NotTo(HaveOccurred(), "listening on %s", addr)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var d net.Dialer
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			up, err := d.DialContext(dctx, "tcp", target)
			cancel()
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := io.Copy(pair[0], pair[1])
					if err != nil && !errors.Is(err, net.ErrClosed) {
						GinkgoWriter.Println(fmt.Sprintf("forward %s -> %s: %v", addr, target, err))
					}
					_ = pair[0].Close()
					_ = pair[1].Close()
				}()
			}
		}
	}()
	return func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}
