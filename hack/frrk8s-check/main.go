// Command frrk8s-check prints, as YAML, the FRRConfiguration the frr-k8s
// backend renders (internal/frrk8s.Render) for a sample node state that
// uses every feature: eBGP with port, source, timers, multihop, password,
// graceful restart and BFD; iBGP with local preference; IPv6; communities,
// large communities, GRACEFUL_SHUTDOWN and an aggregate. check.sh feeds it
// through frr-k8s's own conversion and template and asks FRR's
// frr-reload.py --test whether the installed FRR accepts the result.
package main

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/bgplb/bgplb/bgp"
	"github.com/bgplb/bgplb/internal/frrk8s"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "frrk8s-check:", err)
		os.Exit(1)
	}
}

func run() error {
	lp := uint32(200)
	addr, prefix := netip.MustParseAddr, netip.MustParsePrefix
	st := bgp.State{ASN: 64512, RouterID: addr("192.0.2.1"),
		Peers: []bgp.Peer{
			{Name: "rtr-a", Address: addr("192.0.2.10"), ASN: 65001, LocalASN: 64512, Port: 179, SourceAddress: addr("192.0.2.1"),
				HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, EBGPMultihopTTL: 3, Password: "s3cret",
				GracefulRestart: bgp.GracefulRestart{Enabled: true}, BFD: bgp.BFD{Enabled: true, MinRx: 300 * time.Millisecond, Multiplier: 3}},
			{Name: "rtr-b", Address: addr("192.0.2.11"), ASN: 64512, LocalASN: 64512},
			{Name: "rtr-6", Address: addr("2001:db8::10"), ASN: 65002, LocalASN: 64512},
		},
		Paths: []bgp.Path{
			{Prefix: prefix("198.51.100.7/32"), Peers: map[string]bgp.Attributes{
				"rtr-a": {Communities: []uint32{65000<<16 | 100, 0xFFFF0000}, LargeCommunities: []bgp.LargeCommunity{{GlobalAdmin: 65000, LocalData1: 1, LocalData2: 2}}},
				"rtr-b": {LocalPref: &lp}}},
			{Prefix: prefix("198.51.100.64/26"), Peers: map[string]bgp.Attributes{"rtr-a": {}, "rtr-b": {LocalPref: &lp}}},
			{Prefix: prefix("2001:db8:5::1/128"), Peers: map[string]bgp.Attributes{"rtr-6": {Communities: []uint32{65000<<16 | 100}}}},
		}}
	cfg, err := frrk8s.Render(st, frrk8s.Options{NodeName: "node-a", Namespace: "frr-k8s-system",
		NodeSelector: map[string]string{"kubernetes.io/hostname": "node-a"}})
	if err != nil {
		return err
	}
	obj := frrv1beta1.FRRConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: frrv1beta1.GroupVersion.String(), Kind: "FRRConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: frrk8s.ConfigName("node-a"), Namespace: "frr-k8s-system"},
		Spec:       cfg.Spec,
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encoding: %w", err)
	}
	_, err = os.Stdout.Write(b)
	return err
}
