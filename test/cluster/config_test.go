package cluster

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func TestAddressPlan(t *testing.T) {
	for i := 1; i <= 3; i++ {
		p4, p6 := NodePodCIDRs(i)
		if !PodCIDR4.Contains(p4.Addr()) || !PodCIDR6.Contains(p6.Addr()) || p4.Bits() != 24 || p6.Bits() != 64 {
			t.Errorf("node %d: pod ranges %s %s outside %s %s", i, p4, p6, PodCIDR4, PodCIDR6)
		}
	}
	if got := firstIP(ServiceCIDR4); got != netip.MustParseAddr("198.18.0.1") {
		t.Errorf("first Service IP %s", got)
	}
	if got := firstIP(ServiceCIDR6); got != netip.MustParseAddr("2001:db8:96::1") {
		t.Errorf("first Service IPv6 %s", got)
	}
}

func TestCNIConfig(t *testing.T) {
	p4, p6 := NodePodCIDRs(2)
	n := &Node{Name: "n2", Dir: "/x/n2", PodCIDR4: p4, PodCIDR6: p6}
	var conf struct {
		Plugins []struct {
			Type string `json:"type"`
			IPAM struct {
				DataDir string                `json:"dataDir"`
				Ranges  [][]map[string]string `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(n.cniConfig()), &conf); err != nil {
		t.Fatal(err)
	}
	b := conf.Plugins[0]
	if b.Type != "bridge" || b.IPAM.DataDir != "/x/n2/ipam" || len(b.IPAM.Ranges) != 2 ||
		b.IPAM.Ranges[0][0]["subnet"] != "198.19.2.0/24" || b.IPAM.Ranges[1][0]["subnet"] != "2001:db8:244:2::/64" {
		t.Errorf("bridge plugin: %+v", b)
	}
}

func TestContainerdConfigKeepsEverythingInTheNodeDir(t *testing.T) {
	n := &Node{Name: "n1", Dir: "/x/n1"}
	c := n.containerdConfig(PauseImage)
	for _, want := range []string{`root = "/x/n1/containerd/root"`, `Root = "/x/n1/containerd/runc"`,
		"restrict_oom_score_adj = true", "netns_mounts_under_state_dir = true", "SystemdCgroup = false",
		`sandbox_image = "` + PauseImage + `"`} {
		if !strings.Contains(c, want) {
			t.Errorf("containerd config lacks %s", want)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/tmp/a\040b/c`); got != "/tmp/a b/c" {
		t.Errorf("got %q", got)
	}
}
