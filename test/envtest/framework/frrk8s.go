package framework

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// FRRK8sModule is the frr-k8s module whose API types bgplb uses (pinned in
// go.mod); its CRDs come from the same version.
const FRRK8sModule = "github.com/metallb/frr-k8s"

// FRRK8sCRDs reads frr-k8s's CRDs (FRRConfiguration, BGPSessionState,
// FRRNodeState) from the pinned module in the module cache, as shipped in
// its config/crd/bases, with one fix: FixInt32Maximums. As shipped,
// kube-apiserver 1.37 rejects every FRRConfiguration ("Maximum boundary
// value must be of type integer with format int32" on the ASN fields).
func FRRK8sCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", FRRK8sModule)
	cmd.Dir = RepoRoot()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("locating module %s: %w", FRRK8sModule, err)
	}
	dir := filepath.Join(strings.TrimSpace(out.String()), "config", "crd", "bases")
	files, err := filepath.Glob(filepath.Join(dir, "frrk8s.metallb.io_*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no frr-k8s CRDs in %s (%v)", dir, err)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(b, crd); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", f, err)
		}
		for i := range crd.Spec.Versions {
			if v := crd.Spec.Versions[i].Schema; v != nil && v.OpenAPIV3Schema != nil {
				FixInt32Maximums(v.OpenAPIV3Schema)
			}
		}
		crds = append(crds, crd)
	}
	return crds, nil
}

// FixInt32Maximums changes, in place, every integer field of a CRD schema
// declared format int32 with a maximum beyond int32 (frr-k8s's ASNs: 32-bit
// unsigned) to format int64, which kube-apiserver 1.37 accepts; the
// maximum still bounds the value.
func FixInt32Maximums(s *apiextensionsv1.JSONSchemaProps) {
	if s == nil {
		return
	}
	if s.Type == "integer" && s.Format == "int32" && s.Maximum != nil && *s.Maximum > math.MaxInt32 {
		s.Format = "int64"
	}
	for k, p := range s.Properties {
		FixInt32Maximums(&p)
		s.Properties[k] = p
	}
	if s.Items != nil {
		FixInt32Maximums(s.Items.Schema)
		for i := range s.Items.JSONSchemas {
			FixInt32Maximums(&s.Items.JSONSchemas[i])
		}
	}
	if s.AdditionalProperties != nil {
		FixInt32Maximums(s.AdditionalProperties.Schema)
	}
	for _, list := range [][]apiextensionsv1.JSONSchemaProps{s.AllOf, s.AnyOf, s.OneOf} {
		for i := range list {
			FixInt32Maximums(&list[i])
		}
	}
}

// FRRK8sController builds frr-k8s's own controller (cmd/frr-k8s-controller)
// from the pinned module into dir and returns its path. It is a tool of
// bgplb's module (go.mod), so it is built against the dependency versions
// bgplb ships with: they compile it unchanged, and the build reuses the
// packages bgplb's own build compiled (about 10 s instead of 10 minutes on
// a cold cache, where frr-k8s's own older Kubernetes libraries would all be
// compiled again).
func FRRK8sController(dir string) (string, error) {
	bin := filepath.Join(dir, "frr-k8s-controller")
	build := exec.Command("go", "build", "-o", bin, FRRK8sModule+"/cmd/frr-k8s-controller")
	build.Dir = RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building frr-k8s-controller: %w: %s", err, b)
	}
	return bin, nil
}
