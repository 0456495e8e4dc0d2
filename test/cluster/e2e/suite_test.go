// Package e2e holds the specs that run on the real-node cluster
// (test/cluster): real kubelets, containerd, kube-proxy and pods, bgplb
// installed by `kubectl apply -k`. They run only with BGPLB_CLUSTER_E2E=1
// (make test-cluster sets it), as root with the cluster's prerequisites.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"

	"github.com/bgplb/bgplb/test/cluster"
	"github.com/bgplb/bgplb/test/envtest/framework"
	"github.com/bgplb/bgplb/test/lab"
)

// EnvVar turns the suite on.
const EnvVar = "BGPLB_CLUSTER_E2E"

var (
	cl     *cluster.Cluster
	cs     kubernetes.Interface
	failed bool
)

func TestClusterE2E(t *testing.T) {
	if os.Getenv(EnvVar) != "1" {
		t.Skipf("%s=1 not set: the real-node cluster suite runs with make test-cluster", EnvVar)
	}
	if err := cluster.Check(); err != nil {
		t.Fatal(err)
	}
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(2 * time.Minute)
	SetDefaultEventuallyPollingInterval(250 * time.Millisecond)
	RunSpecs(t, "bgplb e2e on the real-node cluster")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	t0 := time.Now()
	var err error
	cl, err = cluster.Start(ctx, cluster.Options{Progress: GinkgoWriter, KeepDir: true})
	Expect(err).NotTo(HaveOccurred())
	cs = cl.Clientset
	fmt.Fprintf(GinkgoWriter, "cluster: nodes Ready after %s\n", time.Since(t0).Round(100*time.Millisecond))
	t1 := time.Now()
	Expect(cl.InstallBgplb(ctx)).To(Succeed())
	fmt.Fprintf(GinkgoWriter, "cluster: bgplb ready %s after kubectl apply -k\n", time.Since(t1).Round(100*time.Millisecond))
	_, err = cl.ApplyKustomize(ctx, framework.RepoRoot()+"/config/samples/lab")
	Expect(err).NotTo(HaveOccurred())
}, NodeTimeout(10*time.Minute))

var _ = AfterEach(func() {
	if CurrentSpecReport().Failed() {
		failed = true
	}
})

var _ = AfterSuite(func() {
	if cl == nil {
		return
	}
	if failed {
		if out, err := cl.Kubectl(ctxBG(), "get", "pods", "-A", "-o", "wide"); err == nil {
			fmt.Fprintf(GinkgoWriter, "pods at failure:\n%s", out)
		}
		// Stop deletes the pods and with them their logs: keep bgplb's.
		if out, err := cl.Kubectl(ctxBG(), "-n", "bgplb-system", "get", "pods", "-o", "name"); err == nil {
			for _, pod := range strings.Fields(out) {
				logs, _ := cl.Kubectl(ctxBG(), "-n", "bgplb-system", "logs", pod, "--all-containers", "--prefix")
				prev, _ := cl.Kubectl(ctxBG(), "-n", "bgplb-system", "logs", pod, "--all-containers", "--previous")
				_ = os.WriteFile(filepath.Join(cl.Dir, "logs", strings.TrimPrefix(pod, "pod/")+".log"), []byte(prev+logs), 0o644)
			}
		}
	}
	dir := cl.Dir
	err := cl.Stop()
	Expect(err).NotTo(HaveOccurred())
	Expect(cl.Leftovers()).To(BeEmpty(), "the cluster left things behind")
	if failed {
		fmt.Fprintf(GinkgoWriter, "cluster logs kept in %s\n", dir)
	} else {
		_ = os.RemoveAll(dir)
	}
	left, _ := lab.Leftovers("")
	Expect(left).To(BeEmpty())
})

func clusterBackend(ns, name string) string { return cluster.BackendManifest(ns, name, 3) }
