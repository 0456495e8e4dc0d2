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

// NOTES.txt tells a user what to apply next; every file it points to
// exists, and it names the three kinds a first announcement needs.
func TestNotesPointToFilesThatExist(t *testing.T) {
	cmd := exec.Command(helm(t), "install", "--dry-run=client", "bgplb", chartDir, "--namespace", namespace)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(), "KUBECONFIG="+os.DevNull)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm install --dry-run=client: %v\n%s", err, errb.String())
	}
	_, notes, ok := strings.Cut(out.String(), "NOTES:")
	if !ok {
		t.Fatalf("no NOTES in:\n%s", out.String())
	}
	for _, kind := range []string{"IPPool", "BGPPeer", "BGPAdvertisement"} {
		if !strings.Contains(notes, kind) {
			t.Errorf("NOTES do not mention %s:\n%s", kind, notes)
		}
	}
	paths := repoPath.FindAllString(notes, -1)
	if len(paths) < 6 {
		t.Errorf("NOTES point to %d files, want a sample and a page per kind: %q", len(paths), paths)
	}
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
			t.Errorf("NOTES point to %s: %v", p, err)
		}
	}
}
