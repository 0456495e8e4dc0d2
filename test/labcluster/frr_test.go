package labcluster

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The testdata files are real output of FRR 8.4 (Debian bookworm) on the
// lab, with routes announced by bgplb speakers: an advertisement with
// communities 64512:100, no-export and graceful-shutdown and a large
// community.

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePaths(t *testing.T) {
	paths, err := ParsePaths(readTestdata(t, "frr-paths-ipv4.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12"), netip.MustParseAddr("192.0.2.13")}
	if got := PathNextHops(paths); !slices.Equal(got, want) {
		t.Fatalf("next hops %v, want %v", got, want)
	}
	best := 0
	for _, p := range paths {
		if p.Peer != p.NextHop.String() || p.PeerType != "external" || p.ASPath != "64512" || !p.Multipath || p.Stale {
			t.Errorf("path %+v", p)
		}
		if !slices.Equal(p.Communities, []string{"64512:100", "graceful-shutdown", "no-export"}) {
			t.Errorf("communities %q", p.Communities)
		}
		if !slices.Equal(p.LargeCommunities, []string{"64512:1:100"}) {
			t.Errorf("large communities %q", p.LargeCommunities)
		}
		// FRR gives GRACEFUL_SHUTDOWN routes LOCAL_PREF 0 (RFC 8326).
		if p.LocalPref == nil || *p.LocalPref != 0 {
			t.Errorf("local pref %v, want 0", p.LocalPref)
		}
		if p.Best {
			best++
		}
	}
	if best != 1 {
		t.Errorf("%d best paths, want 1", best)
	}
}

func TestParsePathsIPv6(t *testing.T) {
	paths, err := ParsePaths(readTestdata(t, "frr-paths-ipv6.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The global next hop, not a link-local one.
	want := []netip.Addr{netip.MustParseAddr("2001:db8:2::11"), netip.MustParseAddr("2001:db8:2::12"), netip.MustParseAddr("2001:db8:2::13")}
	if got := PathNextHops(paths); !slices.Equal(got, want) {
		t.Fatalf("next hops %v, want %v", got, want)
	}
}

func TestParsePathsUnknownPrefix(t *testing.T) {
	for _, in := range [][]byte{readTestdata(t, "frr-paths-none.json"), []byte("% Network not in table\n"), nil} {
		paths, err := ParsePaths(in)
		if err != nil || len(paths) != 0 {
			t.Errorf("ParsePaths(%q) = %v, %v; want no paths", in, paths, err)
		}
	}
	if _, err := ParsePaths([]byte(`{"paths": [`)); err == nil {
		t.Error("truncated JSON parsed without error")
	}
}

func TestParseNeighbors(t *testing.T) {
	nbrs, err := ParseNeighbors(readTestdata(t, "frr-summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.11", "192.0.2.12", "192.0.2.13", "2001:db8:1::11", "2001:db8:1::12", "2001:db8:1::13"}
	var got []string
	for a, n := range nbrs {
		got = append(got, a)
		if n.State != "Established" || n.RemoteAS != 64512 || n.LocalAS != 64501 || n.PfxRcd != 1 {
			t.Errorf("neighbor %+v", n)
		}
		if fam := map[bool]string{true: "ipv6", false: "ipv4"}[netip.MustParseAddr(a).Is6()]; n.Family != fam {
			t.Errorf("neighbor %s family %q, want %q", a, n.Family, fam)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("neighbors %v, want %v", got, want)
	}
}
