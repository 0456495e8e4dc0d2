package ipam_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/ipam"
	"github.com/bgplb/bgplb/test/bench/benchutil"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

// Two replicas of the real binary with leader election, as the Deployment
// runs them; the leader is killed with SIGKILL (no lease release, no
// cleanup) three times while Services are being created.
var _ = Describe("Leader killed during a burst", Ordered, func() {
	const total, creators, kills = 1000, 16, 3

	It("never duplicates or changes an address, and the standby resumes", func() {
		bin, err := framework.Binary(GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		ns := newNamespace()
		createPool("leader", []string{"198.18.4.0/22"})
		installNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.InstallNamespace}}
		if err := k8s.Create(ctx, installNS); err != nil && !apierrors.IsAlreadyExists(err) {
			Expect(err).NotTo(HaveOccurred())
		}
		// The suite's in-process controller would be a third allocator.
		controller.stop()
		controller = nil
		logDir := GinkgoT().TempDir()
		var replicas []*benchutil.Child
		logs := map[*benchutil.Child]string{}
		start := func() {
			GinkgoHelper()
			log := filepath.Join(logDir, fmt.Sprintf("controller-%d.log", len(logs)))
			c, err := benchutil.StartChild(env.Config, bin, []string{"controller",
				"--leader-elect", "--leader-election-lease-duration=3s", "--leader-election-renew-deadline=2s",
				"--leader-election-retry-period=500ms", "--metrics-bind-address=0", "--health-probe-bind-address=0"}, log)
			Expect(err).NotTo(HaveOccurred())
			replicas = append(replicas, c)
			logs[c] = log
		}
		DeferCleanup(func() {
			for _, c := range replicas {
				c.Stop(5 * time.Second)
			}
			controller = startController(ipam.Options{DefaultClass: true})
		})
		start()
		start()
		killed := map[*benchutil.Child]bool{}
		leader := func() *benchutil.Child {
			for _, c := range replicas {
				if b, _ := os.ReadFile(logs[c]); !killed[c] && bytes.Contains(b, []byte("acquired lease")) {
					return c
				}
			}
			return nil
		}
		Eventually(leader, 30*time.Second).ShouldNot(BeNil())

		watcher := watchStatuses(ns)
		created := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(created)
			// Paced so the burst lasts through the kills: 1,000 Services
			// in about 25 s from 16 clients.
			createBurst(ns, total, creators, func(i int) *corev1.Service {
				time.Sleep(400 * time.Millisecond)
				return newService(ns, svcName(i))
			})
		}()
		for k := range kills {
			time.Sleep(2 * time.Second)
			old := leader()
			Expect(old).NotTo(BeNil())
			before := watcher.withAddress()
			at := time.Now()
			Expect(syscall.Kill(old.PID, syscall.SIGKILL)).To(Succeed())
			killed[old] = true
			start() // the Deployment would start a new Pod
			Eventually(func() bool { l := leader(); return l != nil && l != old }, 30*time.Second).Should(BeTrue())
			elected := time.Since(at)
			Eventually(func() int { return watcher.withAddress() }, 30*time.Second).Should(BeNumerically(">", before),
				"the new leader should hand out addresses")
			AddReportEntry(fmt.Sprintf("kill %d: new leader elected after / first new address after", k+1),
				fmt.Sprintf("%s / %s", elected.Round(time.Millisecond), time.Since(at).Round(time.Millisecond)))
		}
		Eventually(created, time.Minute).Should(BeClosed())
		Eventually(watcher.withAddress, 2*time.Minute).Should(Equal(total))
		Eventually(func() []string { return statusMismatches(ns) }, time.Minute).Should(BeEmpty())
		watcher.stop()
		Expect(watcher.violations()).To(BeEmpty(), "an address was shown by two Services at once")
		Expect(watcher.changes()).To(BeEmpty(), "a Service's address changed")
	})
})
