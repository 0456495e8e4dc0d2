package e2e

import (
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/test/labcluster"
)

// make bench-l2: L2 failover time, from breaking the owner (its speaker
// frozen with SIGSTOP, or its link on the segment down) to the first new
// TCP connection from r1 served by another node, over 10 trials each.
// It prints figures and asserts nothing about them. Skipped unless
// BGPLB_BENCH_L2=1 (it takes a minute or two).
var _ = Describe("L2 failover benchmark", Ordered, Label("bench-l2"), func() {
	BeforeAll(func() {
		if os.Getenv("BGPLB_BENCH_L2") != "1" {
			Skip("set BGPLB_BENCH_L2=1 (make bench-l2)")
		}
		l2Prepare()
		create(&v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "l2-bench"}, Spec: v1alpha1.IPPoolSpec{
			Addresses: []v1alpha1.AddressRange{"192.0.2.60-192.0.2.62"}, AutoAssign: ptrTo(false)}})
		create(&v1alpha1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2-bench"}, Spec: v1alpha1.L2AdvertisementSpec{IPPools: []string{"l2-bench"}}})
	})

	It("prints the failover time for a frozen speaker and a downed link (median and max of 10)", func() {
		_, addrs := createService(labcluster.ServiceOptions{Name: "l2-bench",
			Annotations: map[string]string{v1alpha1.AnnotationIPPool: "l2-bench"}}, 1)
		a := addrs[0]
		serve(a, nodes...)
		r1 := cluster.Lab.Router("r1")
		owner := ownerOf(r1, a)
		kinds := []struct {
			name          string
			breakIt, mend func()
		}{
			{"frozen speaker (SIGSTOP)", func() { Expect(cluster.Speaker(owner).Signal(syscall.SIGSTOP)).To(Succeed()) },
				func() { Expect(cluster.Speaker(owner).Signal(syscall.SIGCONT)).To(Succeed()) }},
			{"link down", func() {
				_, err := cluster.Lab.Node(owner).Exec(ctx, "ip", "link", "set", l2Iface, "down")
				Expect(err).NotTo(HaveOccurred())
			}, func() {
				_, err := cluster.Lab.Node(owner).Exec(ctx, "ip", "link", "set", l2Iface, "up")
				Expect(err).NotTo(HaveOccurred())
			}},
		}
		for _, k := range kinds {
			var times []time.Duration
			for range 10 {
				times = append(times, failover(r1, a, owner, k.breakIt, k.mend))
				// Back to the first owner before the next trial.
				Eventually(func() string { return ownerOf(r1, a) }).Should(Equal(owner))
				time.Sleep(time.Second)
			}
			slices.Sort(times)
			line := fmt.Sprintf("bench-l2: %s: failover median %v, max %v, min %v over %d trials (target <= 1s)",
				k.name, ((times[4] + times[5]) / 2).Round(time.Millisecond), times[9].Round(time.Millisecond), times[0].Round(time.Millisecond), len(times))
			fmt.Println("\n" + line)
			AddReportEntry(line)
		}
		expectSessionsUp()
	})
})
