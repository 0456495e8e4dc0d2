package l2mode

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/internal/l2election"
)

// ConditionL2Announced is the Service condition that says which node
// answers ARP/NDP for each of its addresses.
const ConditionL2Announced = "bgplb.io/L2Announced"

// Reasons of the condition and of the events.
const (
	ReasonAnnounced    = "Announced"
	ReasonNoEligible   = "NoEligibleNode"
	ReasonOwnerChanged = "L2OwnerChanged"
)

// serviceSummary is the condition's status, reason and message for one
// Service: "198.51.100.200 on node-2 (eth0); 2001:db8:100::200 on node-2 (eth0)",
// in address order. Every speaker computes the same text from the same
// owners, so whichever writes it writes the same.
func serviceSummary(addrs []netip.Addr, owners map[netip.Addr]l2election.Owner) (status bool, reason, message string) {
	addrs = slices.Clone(addrs)
	slices.SortFunc(addrs, netip.Addr.Compare)
	parts := make([]string, 0, len(addrs))
	status = true
	for _, ip := range addrs {
		o := owners[ip]
		if o.Node == "" {
			status = false
			parts = append(parts, fmt.Sprintf("%s on no node (none is eligible)", ip))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s on %s (%s)", ip, o.Node, strings.Join(o.Interfaces, ",")))
	}
	reason = ReasonAnnounced
	if !status {
		reason = ReasonNoEligible
	}
	return status, reason, strings.Join(parts, "; ")
}

// addressesByService inverts Desired.Services.
func addressesByService(svcs map[netip.Addr][]types.NamespacedName) map[types.NamespacedName][]netip.Addr {
	out := map[types.NamespacedName][]netip.Addr{}
	for ip, keys := range svcs {
		for _, k := range keys {
			out[k] = append(out[k], ip)
		}
	}
	return out
}

// writerOf is the node that writes a Service's condition: the owner of its
// lowest address that has one, else (no node is eligible for any of them)
// fallback. Exactly one node writes each change (the one all speakers
// agree on), and only when the text differs.
func writerOf(addrs []netip.Addr, owners map[netip.Addr]l2election.Owner, fallback string) string {
	addrs = slices.Clone(addrs)
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, ip := range addrs {
		if n := owners[ip].Node; n != "" {
			return n
		}
	}
	return fallback
}

// fallbackWriter is the first selected node, by name, that is Ready and
// alive: it reports Services no node is eligible for. When no
// L2Advertisement selects any node, no speaker hears the others, so it is
// the first Ready node by name (every speaker agrees from the Nodes
// alone); else a Service whose advertisement stopped selecting nodes
// would keep naming its old owner.
func fallbackWriter(d Desired) string {
	for _, name := range d.Selected {
		if n := d.Nodes[name]; n.Ready && n.Alive {
			return name
		}
	}
	if len(d.Selected) > 0 {
		return ""
	}
	names := slices.Sorted(maps.Keys(d.Nodes))
	for _, name := range names {
		if d.Nodes[name].Ready {
			return name
		}
	}
	return ""
}
