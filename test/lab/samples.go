package lab

import (
	"net/netip"
	"strings"
)

// SamplePeer is one BGPPeer of config/samples/lab: the router it names and
// the router's address.
type SamplePeer struct {
	Router  string
	Address netip.Addr
}

// SamplePeers are the BGPPeers of config/samples/lab by name, which the e2e
// suites of both the netns lab and the real-node cluster apply.
var SamplePeers = map[string]SamplePeer{
	"r1-v4": {"r1", netip.MustParseAddr("192.0.2.1")},
	"r1-v6": {"r1", netip.MustParseAddr("2001:db8:1::1")},
	"r2-v4": {"r2", netip.MustParseAddr("192.0.2.65")},
	"r2-v6": {"r2", netip.MustParseAddr("2001:db8:2::1")},
}

// Column reads one column of kubectl's table output (e.g. `kubectl get
// bgppeers`), by the first column (the name). An unknown column gives an
// empty map.
func Column(out, column string) map[string]string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == column {
			col = i
		}
	}
	res := map[string]string{}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); col >= 0 && len(f) > col {
			res[f[0]] = f[col]
		}
	}
	return res
}
