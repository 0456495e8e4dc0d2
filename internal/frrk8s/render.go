// Package frrk8s expresses a node's desired BGP state (bgp.State, the same
// value the embedded GoBGP speaker applies) as frr-k8s objects, and reads
// frr-k8s's session reports back as bgp.PeerStatus. It is pure: no client,
// no I/O; controllers/frrk8s does the writing.
//
// What frr-k8s (v0.0.21, pinned in go.mod) can express differs from GoBGP
// in a few places; each is handled here and listed in docs/frr-k8s.md:
// one local ASN per node (a peer asking for another localASN is skipped),
// ebgp-multihop without a TTL (FRR then uses 255), no graceful-restart
// timer, neighbor ports up to 16384, BFD intervals in whole milliseconds
// from 10 ms to 60 s.
package frrk8s

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"time"

	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/bgp"
)

// Defaults of the bgp package's Peer, made explicit: FRR's own defaults
// differ (hold 180 s, connect retry 120 s), and the two backends must
// behave alike.
const (
	defaultHoldTime     = 90 * time.Second
	defaultConnectRetry = 5 * time.Second
	defaultBFDInterval  = 300 * time.Millisecond
	defaultBFDMult      = 3
	maxPort             = 16384 // the FRRConfiguration schema's maximum
)

// Options say where and for whom the objects are rendered.
type Options struct {
	// NodeName is the node whose state this is.
	NodeName string
	// Namespace is frr-k8s's namespace: it reads FRRConfigurations and
	// password Secrets only there.
	Namespace string
	// NodeSelector selects the node in FRRConfiguration.spec.nodeSelector
	// (frr-k8s matches it against the Node's labels), e.g. the node's
	// kubernetes.io/hostname label.
	NodeSelector map[string]string
}

// Config is what Render produces for one node.
type Config struct {
	// Spec is the node's FRRConfiguration spec.
	Spec frrv1beta1.FRRConfigurationSpec
	// Secrets are the password Secrets the spec references, by name: the
	// value is the password (frr-k8s wants kubernetes.io/basic-auth
	// Secrets with the key "password" in its own namespace).
	Secrets map[string]string
	// Peers are the peers the spec holds, by name, with how many prefixes
	// each is sent (for the status).
	Peers map[string]int
}

// Render expresses st as one FRRConfiguration spec. A peer frr-k8s cannot
// express is left out and reported in the returned error (errors.Join),
// while everything else is rendered, as the GoBGP backend does with
// invalid peers. A state without peers renders an empty configuration: no
// router, so bgplb claims no ASN on the node.
func Render(st bgp.State, o Options) (Config, error) {
	out := Config{Secrets: map[string]string{}, Peers: map[string]int{}}
	out.Spec.NodeSelector = metav1.LabelSelector{MatchLabels: o.NodeSelector}
	var errs []error
	router := frrv1beta1.Router{ASN: st.ASN}
	if st.RouterID.IsValid() {
		router.ID = st.RouterID.String()
	}
	paths := slices.Clone(st.Paths)
	slices.SortFunc(paths, func(a, b bgp.Path) int { return comparePrefix(a.Prefix, b.Prefix) })
	for _, p := range paths {
		router.Prefixes = append(router.Prefixes, p.Prefix.String())
	}
	for i := range st.Peers {
		p := &st.Peers[i]
		n, bfd, err := neighbor(p, st.ASN, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("peer %s left out of the FRRConfiguration: %w", p.Name, err))
			continue
		}
		n.ToAdvertise, out.Peers[p.Name] = advertise(p, st.ASN, paths)
		if bfd != nil {
			out.Spec.BGP.BFDProfiles = append(out.Spec.BGP.BFDProfiles, *bfd)
		}
		if p.Password != "" {
			out.Secrets[n.PasswordSecret.Name] = p.Password
		}
		router.Neighbors = append(router.Neighbors, n)
	}
	if len(router.Neighbors) > 0 {
		out.Spec.BGP.Routers = []frrv1beta1.Router{router}
	}
	return out, errors.Join(errs...)
}

// neighbor renders a peer's session settings, and its BFD profile if any.
func neighbor(p *bgp.Peer, asn uint32, o Options) (frrv1beta1.Neighbor, *frrv1beta1.BFDProfile, error) {
	var n frrv1beta1.Neighbor
	if !p.Address.IsValid() || p.ASN == 0 {
		return n, nil, errors.New("no address or ASN")
	}
	if p.LocalASN != 0 && p.LocalASN != asn {
		return n, nil, fmt.Errorf("frr-k8s runs one BGP router, with one local ASN, per node: this peer asks for localASN %d, the node's router uses %d", p.LocalASN, asn)
	}
	if p.Port > maxPort {
		return n, nil, fmt.Errorf("port %d: frr-k8s accepts neighbor ports up to %d", p.Port, maxPort)
	}
	n.ASN = p.ASN
	n.Address = p.Address.String()
	if p.Port != 0 {
		port := p.Port
		n.Port = &port
	}
	if p.SourceAddress.IsValid() {
		n.SourceAddress = p.SourceAddress.String()
	}
	hold, keepalive := timers(p.HoldTime, p.KeepaliveTime)
	n.HoldTime = &metav1.Duration{Duration: hold}
	n.KeepaliveTime = &metav1.Duration{Duration: keepalive}
	connect := p.ConnectRetryTime
	if connect <= 0 {
		connect = defaultConnectRetry
	}
	n.ConnectTime = &metav1.Duration{Duration: min(ceilSecond(connect), 65535*time.Second)}
	// GoBGP's TTL 1 is a directly connected eBGP peer; frr-k8s has only
	// "multihop or not" (FRR's ebgp-multihop then allows 255 hops).
	n.EBGPMultiHop = p.EBGPMultihopTTL > 1 && p.ASN != asn
	n.EnableGracefulRestart = p.GracefulRestart.Enabled
	if p.Password != "" {
		n.PasswordSecret = frrv1beta1.SecretReference{Name: SecretName(o.NodeName, p.Name), Namespace: o.Namespace}
	}
	n.ToReceive.Allowed.Mode = frrv1beta1.AllowRestricted // and no prefixes: nothing is accepted
	if !p.BFD.Enabled {
		return n, nil, nil
	}
	bfd, err := bfdProfile(p)
	if err != nil {
		return n, nil, err
	}
	n.BFDProfile = bfd.Name
	return n, bfd, nil
}

// timers applies the bgp package's defaults: hold 90 s, keepalive a third
// of it (at least 1 s), both in whole seconds.
func timers(hold, keepalive time.Duration) (time.Duration, time.Duration) {
	if hold <= 0 {
		hold = defaultHoldTime
	}
	hold = ceilSecond(hold)
	if keepalive <= 0 {
		keepalive = max((hold / 3).Truncate(time.Second), time.Second)
	}
	return hold, min(ceilSecond(keepalive), hold)
}

func ceilSecond(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}

// bfdProfile renders a peer's BFD settings as a profile of its own: frr-k8s
// merges the profiles of every FRRConfiguration of a node by name, so the
// name carries bgplb's prefix.
func bfdProfile(p *bgp.Peer) (*frrv1beta1.BFDProfile, error) {
	ms := func(d time.Duration, what string) (*uint32, error) {
		if d <= 0 {
			d = defaultBFDInterval
		}
		v := (d + time.Millisecond - 1) / time.Millisecond
		if v < 10 || v > 60000 {
			return nil, fmt.Errorf("BFD %s %v: frr-k8s accepts 10ms to 60s", what, d)
		}
		u := uint32(v)
		return &u, nil
	}
	rx, err := ms(p.BFD.MinRx, "minimum receive interval")
	if err != nil {
		return nil, err
	}
	tx, err := ms(p.BFD.MinTx, "minimum transmit interval")
	if err != nil {
		return nil, err
	}
	mult := p.BFD.Multiplier
	if mult == 0 {
		mult = defaultBFDMult
	}
	if mult < 2 || mult > 255 {
		return nil, fmt.Errorf("BFD detect multiplier %d: frr-k8s accepts 2 to 255", mult)
	}
	return &frrv1beta1.BFDProfile{Name: "bgplb-" + p.Name, ReceiveInterval: rx, TransmitInterval: tx, DetectMultiplier: &mult}, nil
}

// advertise renders what one peer is sent: the prefixes of its family whose
// path names it, each community and large community with the prefixes
// carrying it, and, towards iBGP peers (eBGP never sees it), each local
// preference with its prefixes. paths are sorted by prefix.
func advertise(p *bgp.Peer, asn uint32, paths []bgp.Path) (frrv1beta1.Advertise, int) {
	a := frrv1beta1.Advertise{Allowed: frrv1beta1.AllowedOutPrefixes{Mode: frrv1beta1.AllowRestricted}}
	v4 := p.Address.Is4()
	ibgp := p.ASN == asn
	communities := map[string][]string{}
	localPrefs := map[uint32][]string{}
	for _, path := range paths {
		attrs, ok := path.Peers[p.Name]
		if !ok || path.Prefix.Addr().Is4() != v4 {
			continue
		}
		prefix := path.Prefix.String()
		a.Allowed.Prefixes = append(a.Allowed.Prefixes, prefix)
		for _, c := range attrs.Communities {
			key := fmt.Sprintf("%d:%d", c>>16, c&0xFFFF)
			communities[key] = append(communities[key], prefix)
		}
		for _, c := range attrs.LargeCommunities {
			key := fmt.Sprintf("large:%d:%d:%d", c.GlobalAdmin, c.LocalData1, c.LocalData2)
			communities[key] = append(communities[key], prefix)
		}
		if attrs.LocalPref != nil && ibgp {
			localPrefs[*attrs.LocalPref] = append(localPrefs[*attrs.LocalPref], prefix)
		}
	}
	for _, c := range sortedKeys(communities) {
		a.PrefixesWithCommunity = append(a.PrefixesWithCommunity, frrv1beta1.CommunityPrefixes{Community: c, Prefixes: communities[c]})
	}
	for _, lp := range sortedKeys(localPrefs) {
		a.PrefixesWithLocalPref = append(a.PrefixesWithLocalPref, frrv1beta1.LocalPrefPrefixes{LocalPref: lp, Prefixes: localPrefs[lp]})
	}
	return a, len(a.Allowed.Prefixes)
}

func sortedKeys[K interface{ ~string | ~uint32 }, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// ConfigName is the name of the node's FRRConfiguration.
func ConfigName(node string) string { return objectName("bgplb-" + node) }

// SecretName is the name of the password Secret of one peer of one node.
// Each node's Secrets are its own, so that a speaker only ever writes
// objects of its own node.
func SecretName(node, peer string) string { return objectName("bgplb-" + node + "-" + peer) }

// objectName keeps a name within the 253 characters of a DNS subdomain.
func objectName(s string) string { return ShortName(s, 253) }

// ShortName returns s if it has at most limit characters, else s cut and
// given a hash of the whole, so that shortened names stay distinct.
func ShortName(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(s))
	return fmt.Sprintf("%s-%08x", s[:limit-9], h.Sum32())
}
