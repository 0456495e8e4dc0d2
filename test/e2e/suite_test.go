package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

// One lab for the whole suite: starting it (routers, API server, processes)
// costs far more than any spec.
var (
	cluster *labcluster.Cluster
	k8s     client.Client
	routers []*lab.Router
	lc      *lab.Client
	nodes   []string
	labDir  string
	failed  bool
)

// testNS holds the suite's Services (no namespace controller runs in the
// lab, so it is never deleted; the lab goes away as a whole).
const testNS = "e2e"

func TestE2E(t *testing.T) {
	lab.RequireLab(t)
	RegisterFailHandler(Fail)
	// Generous: the machine is small and shared. Specs never sleep to
	// assert; they wait for what the routers and the client see.
	SetDefaultEventuallyTimeout(90 * time.Second)
	SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	SetDefaultConsistentlyDuration(3 * time.Second)
	SetDefaultConsistentlyPollingInterval(200 * time.Millisecond)
	suiteConfig, reporterConfig := GinkgoConfiguration()
	suiteConfig.LabelFilter = labelFilterFor(suiteConfig.LabelFilter)
	RunSpecs(t, "bgplb e2e on the network-namespace lab ("+backend+" backend)", suiteConfig, reporterConfig)
}

var _ = BeforeSuite(func(ctx SpecContext) {
	// envtest logs through controller-runtime: shown for failed specs only.
	ctrllog.SetLogger(GinkgoLogr)
	var err error
	labDir, err = os.MkdirTemp("", "bgplb-e2e-")
	Expect(err).NotTo(HaveOccurred())
	start := time.Now()
	opts := labcluster.Options{Dir: labDir, Progress: GinkgoWriter, Backend: backend}
	if backend == labcluster.BackendGoBGP {
		// L2 mode on, as the manifests have it (l2_test.go).
		opts.SpeakerArgs = []string{"--l2-heartbeat-port=7947"}
	}
	cluster, err = labcluster.Start(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(GinkgoWriter, "lab cluster up in %v, dir %s, rbac=%v, backend %s\n", time.Since(start).Round(time.Millisecond), labDir, cluster.RBAC, backend)
	k8s = cluster.Client
	routers = cluster.Lab.Routers()
	lc = cluster.Lab.Client()
	nodes = cluster.NodeNames()
	Expect(cluster.EnsureNamespace(ctx, testNS)).To(Succeed())

	// Every spec needs stable sessions. If they never come up or keep
	// flapping, say so once here instead of in every spec.
	healthy := func(g Gomega) {
		for _, r := range routers {
			est, err := established(r)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(est).To(Equal(sessionAddrs(r, nodes...)), "%s: Established sessions", r.Name)
		}
	}
	why := func() string { return "the routers' view of their sessions:\n" + sessionReport() }
	failures := InterceptGomegaFailures(func() {
		Eventually(healthy, 3*time.Minute).Should(Succeed(), why)
		Consistently(healthy, 6*time.Second, 250*time.Millisecond).Should(Succeed(), why)
	})
	if len(failures) > 0 {
		var b bytes.Buffer
		cluster.Dump(&b, 80)
		_, _ = GinkgoWriter.Write(b.Bytes())
		failed = true
		Fail("the lab's BGP sessions never came up or keep flapping, so no spec can run.\n" + failures[0])
	}
}, NodeTimeout(8*time.Minute))

// sessionReport says, per router and node address, the session state and
// why it last went down.
func sessionReport() string {
	var b bytes.Buffer
	for _, r := range routers {
		for _, a := range sessionAddrs(r, nodes...) {
			d, found, err := labcluster.NeighborInfo(r, a)
			switch {
			case err != nil:
				fmt.Fprintf(&b, "  %s <- %s: %v\n", r.Name, a, err)
			case !found:
				fmt.Fprintf(&b, "  %s <- %s: no session\n", r.Name, a)
			default:
				fmt.Fprintf(&b, "  %s <- %s: %s, established %d times, last reset: %s\n", r.Name, a, d.State, d.ConnectionsEstablished, d.LastReset)
			}
		}
	}
	return b.String()
}

var _ = AfterSuite(func() {
	if cluster == nil {
		if labDir != "" {
			_ = os.RemoveAll(labDir)
		}
		return
	}
	err := cluster.Stop()
	if failed {
		fmt.Fprintf(GinkgoWriter, "lab logs of every process kept in %s\n", filepath.Join(labDir, "logs"))
	} else {
		_ = os.RemoveAll(labDir)
	}
	Expect(err).NotTo(HaveOccurred())
	// What this suite made, by identity: another lab may already be using
	// the same names now that ours released the lock.
	Expect(cluster.Leftovers()).To(BeEmpty(), "the lab left things behind")
})

// On failure, print what the routers, the processes and the API server
// hold, before the spec's cleanups change it, and keep a copy in the lab dir.
var _ = AfterEach(func() {
	if !CurrentSpecReport().Failed() || cluster == nil {
		return
	}
	failed = true
	var b bytes.Buffer
	cluster.Dump(&b, 80)
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(CurrentSpecReport().LeafNodeText, "-")
	file := filepath.Join(labDir, "dump-"+name+".txt")
	_ = os.WriteFile(file, b.Bytes(), 0o644)
	fmt.Fprintf(GinkgoWriter, "===== lab state at failure (also in %s)\n", file)
	_, _ = GinkgoWriter.Write(b.Bytes())
})
