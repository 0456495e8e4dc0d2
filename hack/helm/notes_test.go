package chart

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var repoPath = regexp.MustCompile(`\b(?:config/samples|docs)/[A-Za-z0-9_./-]+\.(?:yaml|md)\b`)

// notes returns the NOTES Helm prints on install with args.
func notes(t *testing.T, args ...string) string {
	t.Helper()
	full := append([]string{"install", "--dry-run=client", "bgplb", chartDir, "--namespace", namespace}, args...)
	cmd := exec.Command(helm(t), full...)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(), "KUBECONFIG="+os.DevNull)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm install --dry-run=client: %v\n%s", err, errb.String())
	}
	_, n, ok := strings.Cut(out.String(), "NOTES:")
	if !ok {
		t.Fatalf("no NOTES in:\n%s", out.String())
	}
	return n
}

// NOTES.txt tells a user what to apply next; every file it points to
// exists, and it names the three kinds a first announcement needs.
func TestNotesPointToFilesThatExist(t *testing.T) {
	notes := notes(t)
	for _, kind := range []string{"IPPool", "BGPPeer", "BGPAdvertisement"} {
		if !strings.Contains(notes, kind) {
			t.Errorf("NOTES do not mention %s:\n%s", kind, notes)
		}
	}
	if strings.Contains(notes, "frr-k8s") {
		t.Errorf("NOTES of the gobgp backend mention frr-k8s:\n%s", notes)
	}
	paths := repoPath.FindAllString(notes, -1)
	if len(paths) < 6 {
		t.Errorf("NOTES point to %d files, want a sample and a page per kind: %q", len(paths), paths)
	}
	checkPaths(t, paths)
}

// With bgpBackend=frr-k8s the NOTES say frr-k8s must already run in
// frrK8s.namespace, and point to the backend's page.
func TestNotesOfFRRK8s(t *testing.T) {
	notes := notes(t, "--set", "bgpBackend=frr-k8s", "--set", "frrK8s.namespace=frr-system")
	for _, want := range []string{"frr-k8s (its CRDs and its", "in frr-system", "docs/frr-k8s.md"} {
		if !strings.Contains(strings.Join(strings.Fields(notes), " "), want) {
			t.Errorf("NOTES do not say %q:\n%s", want, notes)
		}
	}
	checkPaths(t, repoPath.FindAllString(notes, -1))
}

func checkPaths(t *testing.T, paths []string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
			t.Errorf("NOTES point to %s: %v", p, err)
		}
	}
}
