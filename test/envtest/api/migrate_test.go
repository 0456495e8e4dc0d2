package api_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/migrate/metallb"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

// The round trip of `bgplb migrate metallb`: what it prints from a MetalLB
// configuration that sets every field of MetalLB's API passes bgplb's
// admission (OpenAPI and CEL), and what it prints disabled would not.
var _ = Describe("bgplb migrate metallb output", func() {
	It("is accepted by the API server, except the objects it disables", func() {
		f, err := os.Open(filepath.Join(framework.RepoRoot(), "internal", "migrate", "metallb", "testdata", "full.yaml"))
		Expect(err).NotTo(HaveOccurred())
		defer f.Close()
		cfg, err := metallb.Read(f)
		Expect(err).NotTo(HaveOccurred())
		res := metallb.Convert(cfg)
		_ = k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.InstallNamespace}})
		kinds := map[string]int{}
		disabled := 0
		for _, it := range res.Items {
			if it.Object == nil {
				continue
			}
			obj := it.Object.DeepCopyObject().(client.Object)
			kind := obj.GetObjectKind().GroupVersionKind().Kind
			err := k8s.Create(ctx, obj, client.DryRunAll)
			if it.Disabled {
				disabled++
				Expect(err).To(HaveOccurred(), "disabled %s %s would have been accepted: it need not be disabled", kind, obj.GetName())
				continue
			}
			Expect(err).NotTo(HaveOccurred(), "%s %s, converted with comments %q", kind, obj.GetName(), it.Comments)
			kinds[kind]++
		}
		Expect(kinds).To(Equal(map[string]int{"IPPool": 4, "BGPPeer": 3, "BGPAdvertisement": 2, "Secret": 2}))
		Expect(disabled).To(Equal(1))
	})
})
