package api_test

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/test/envtest/framework"
)

// readObjects decodes every document of the YAML files in dir (recursively).
func readObjects(dir string) []*unstructured.Unstructured {
	var objs []*unstructured.Unstructured
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") || filepath.Base(path) == "kustomization.yaml" {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if err.Error() == "EOF" {
					return nil
				}
				return err
			}
			if len(u.Object) == 0 {
				continue
			}
			u.SetAnnotations(map[string]string{"sample-file": filepath.Base(path)})
			objs = append(objs, u)
		}
	})
	Expect(err).NotTo(HaveOccurred())
	return objs
}

var _ = Describe("config/samples", func() {
	It("are all accepted by the API server", func() {
		objs := readObjects(filepath.Join(framework.RepoRoot(), "config", "samples"))
		Expect(len(objs)).To(BeNumerically(">=", 5), "expected samples of every kind")
		kinds := map[string]bool{}
		for _, o := range objs {
			if o.GetNamespace() != "" && o.GetKind() != "Namespace" {
				ns := &unstructured.Unstructured{}
				ns.SetAPIVersion("v1")
				ns.SetKind("Namespace")
				ns.SetName(o.GetNamespace())
				_ = k8s.Create(ctx, ns)
			}
			Expect(k8s.Create(ctx, o, client.DryRunAll)).To(Succeed(),
				"sample %s %s from %s", o.GetKind(), o.GetName(), o.GetAnnotations()["sample-file"])
			kinds[o.GetKind()] = true
		}
		for _, k := range []string{"IPPool", "BGPPeer", "BGPAdvertisement", "L2Advertisement"} {
			Expect(kinds).To(HaveKey(k), "samples should show a %s", k)
		}
	})
})
