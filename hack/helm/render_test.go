// Package chart tests charts/bgplb: its default render is the same set of
// objects as config/default (so the Helm and kustomize installs cannot
// drift), and every value changes what it says it changes.
package chart

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const (
	repoRoot  = "../.."
	chartDir  = repoRoot + "/charts/bgplb"
	namespace = "bgplb-system"
)

// helmLabels are the labels Helm's conventions add to every object's
// metadata (see _helpers.tpl); the only labels the equivalence ignores.
var helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

// obj is one rendered Kubernetes object, decoded the same way from either
// renderer (YAML -> JSON -> map) so numbers and nulls compare equal.
type obj map[string]any

func (o obj) kind() string { return str(o, "kind") }
func (o obj) name() string { return str(o, "metadata", "name") }
func (o obj) key() string {
	return fmt.Sprintf("%s %s/%s/%s", str(o, "apiVersion"), o.kind(), str(o, "metadata", "namespace"), o.name())
}

// str returns the string at path in o, or "".
func str(o map[string]any, path ...string) string {
	s, _ := get(o, path...).(string)
	return s
}

// get returns the value at path in o, or nil.
func get(o map[string]any, path ...string) any {
	var cur any = o
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// decode splits a multi-document YAML stream into objects, skipping empty
// documents (Helm's templates that render nothing).
func decode(t *testing.T, stream []byte) []obj {
	t.Helper()
	var out []obj
	for _, doc := range splitDocs(stream) {
		var o obj
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("decoding %q: %v", doc, err)
		}
		if len(o) > 0 {
			out = append(out, o)
		}
	}
	return out
}

func splitDocs(stream []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for _, line := range strings.SplitAfter(string(stream), "\n") {
		if strings.TrimRight(line, "\r\n") == "---" {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, cur.Bytes())
}

// kustomize builds config/<overlay> (default, frr-k8s) with the kustomize
// Go API, the library `kubectl kustomize` and `kubectl apply -k` are built on.
func kustomize(t *testing.T, overlay string) []obj {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot, "config", overlay))
	if err != nil {
		t.Fatalf("kustomize build config/%s: %v", overlay, err)
	}
	y, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize output: %v", err)
	}
	return decode(t, y)
}

var (
	helmOnce sync.Once
	helmBin  string
	helmErr  error
)

// helm returns the path of the helm binary, built once from this module's
// tool line (the same build `make lint-chart` runs).
func helm(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bgplb-helm-")
		if err != nil {
			helmErr = err
			return
		}
		helmBin = filepath.Join(dir, "helm")
		cmd := exec.Command("go", "build", "-o", helmBin, "helm.sh/helm/v4/cmd/helm")
		if out, err := cmd.CombinedOutput(); err != nil {
			helmErr = fmt.Errorf("building helm: %w: %s", err, out)
		}
	})
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	return helmBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if helmBin != "" {
		_ = os.RemoveAll(filepath.Dir(helmBin))
	}
	os.Exit(code)
}

// template runs `helm template --include-crds` on the chart, as a user or a
// GitOps tool renders it, and returns its stdout and stderr.
func template(t *testing.T, ns string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	full := append([]string{"template", "bgplb", chartDir, "--namespace", ns, "--include-crds"}, args...)
	cmd := exec.Command(helm(t), full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// No user configuration: the render needs no cluster or repository.
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir(), "KUBECONFIG="+os.DevNull)
	err = cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

// render renders the chart and fails the test on error.
func render(t *testing.T, args ...string) []obj {
	t.Helper()
	out, errb, err := template(t, namespace, args...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, errb)
	}
	return decode(t, out)
}

// byKey indexes objects by apiVersion, kind, namespace and name, failing on
// duplicates (two objects the API server would see as one).
func byKey(t *testing.T, objs []obj) map[string]obj {
	t.Helper()
	m := make(map[string]obj, len(objs))
	for _, o := range objs {
		if _, dup := m[o.key()]; dup {
			t.Fatalf("two objects %s", o.key())
		}
		m[o.key()] = o
	}
	return m
}

func keys(m map[string]obj) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dropLabels removes label keys from an object's metadata.labels, and the
// labels map if that empties it.
func dropLabels(o obj, drop ...string) {
	md, _ := o["metadata"].(map[string]any)
	labels, _ := md["labels"].(map[string]any)
	for _, k := range drop {
		delete(labels, k)
	}
	if md != nil && len(labels) == 0 {
		delete(md, "labels")
	}
}

// diff describes where two decoded objects differ (empty when equal).
func diff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: kustomize has %v, the chart %v", path, want, got)}
		}
		var out []string
		for k := range union(w, g) {
			out = append(out, diff(path+"."+k, w[k], g[k])...)
		}
		sort.Strings(out)
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: kustomize has %v, the chart %v", path, want, got)}
		}
		var out []string
		for i := range w {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) || (want == nil) != (got == nil) {
			return []string{fmt.Sprintf("%s: kustomize has %#v, the chart %#v", path, want, got)}
		}
		return nil
	}
}

func union(a, b map[string]any) map[string]bool {
	u := map[string]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

// errText returns an error's message and the command's stderr.
func errText(err error, stderr []byte) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(stderr)
	}
	return fmt.Sprint(err)
}
