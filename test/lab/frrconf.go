package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Family is a BGP address family the router activates for a peer group.
type Family string

// Address families a peer group can carry.
const (
	IPv4Unicast Family = "ipv4"
	IPv6Unicast Family = "ipv6"
)

// BFDProfile is a named bfdd profile; bgpd peers refer to it by name.
type BFDProfile struct {
	Name string
	// DetectMultiplier is the number of missed packets before the session goes down.
	DetectMultiplier int
	// ReceiveIntervalMS and TransmitIntervalMS are the desired intervals in milliseconds.
	ReceiveIntervalMS  int
	TransmitIntervalMS int
}

// DefaultBFDProfile is the profile the design's failure target assumes: 300 ms x 3.
func DefaultBFDProfile() BFDProfile {
	return BFDProfile{Name: "lab", DetectMultiplier: 3, ReceiveIntervalMS: 300, TransmitIntervalMS: 300}
}

// PeerGroup is a set of BGP neighbors of a router sharing one configuration:
// dynamic ones (ListenRanges) and/or explicit ones (Neighbors).
type PeerGroup struct {
	// Name is the FRR peer-group name (letters, digits, '-', '_').
	Name string
	// RemoteASN is the peers' AS number. 0 means "external" (any AS other
	// than the router's); the router's own ASN makes the group iBGP.
	RemoteASN uint32
	// ListenRanges accept sessions from any address inside (bgp listen range).
	ListenRanges []netip.Prefix
	// Neighbors are explicit peer addresses the router also connects to.
	Neighbors []netip.Addr
	// Password enables TCP MD5 authentication when not empty.
	Password string
	// BFD enables BFD for the group's sessions with the router's BFD profile.
	BFD bool
	// Families to activate; empty means the families of the group's addresses.
	Families []Family
	// HoldTime and KeepaliveTime in seconds; 0 keeps FRR's datacenter defaults (9/3).
	HoldTime, KeepaliveTime int
}

// RouterConfig is everything the lab renders into one FRR router's config files.
type RouterConfig struct {
	// Hostname shows up in FRR's output and logs.
	Hostname string
	ASN      uint32
	RouterID netip.Addr
	// MaximumPaths bounds ECMP for eBGP and iBGP paths (default 16).
	MaximumPaths int
	// GracefulRestart makes the router restart-capable; FRR is a graceful
	// restart helper for its peers either way.
	GracefulRestart bool
	// StalePathTime is how long (s) stale routes of a restarting peer are kept (0: FRR default).
	StalePathTime int
	// BFD is the profile used by peer groups with BFD set.
	BFD BFDProfile
	// SendRoutes lets the router advertise its routes to the peer groups; by
	// default it sends nothing (the speakers reject imports anyway).
	SendRoutes bool
	PeerGroups []PeerGroup
	// ExtraBGP are raw lines appended inside "router bgp" (escape hatch for one-off tests).
	ExtraBGP []string
}

var namePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`)

// Validate reports configuration mistakes before anything is written.
func (c *RouterConfig) Validate() error {
	var errs []error
	if c.ASN == 0 || c.ASN == 4294967295 {
		errs = append(errs, fmt.Errorf("asn %d out of range", c.ASN))
	}
	if !c.RouterID.Is4() {
		errs = append(errs, fmt.Errorf("router-id %v is not an IPv4 address", c.RouterID))
	}
	if c.Hostname != "" && !namePattern.MatchString(c.Hostname) {
		errs = append(errs, fmt.Errorf("hostname %q is not a plain name", c.Hostname))
	}
	if c.BFD.Name != "" && !namePattern.MatchString(c.BFD.Name) {
		errs = append(errs, fmt.Errorf("bfd profile name %q is not a plain name", c.BFD.Name))
	}
	seen := map[string]bool{}
	for _, g := range c.PeerGroups {
		if !namePattern.MatchString(g.Name) {
			errs = append(errs, fmt.Errorf("peer group name %q is not a plain name", g.Name))
		}
		if seen[g.Name] {
			errs = append(errs, fmt.Errorf("peer group %q defined twice", g.Name))
		}
		seen[g.Name] = true
		if len(g.ListenRanges) == 0 && len(g.Neighbors) == 0 {
			errs = append(errs, fmt.Errorf("peer group %q has no listen range and no neighbor", g.Name))
		}
		if strings.ContainsFunc(g.Password, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			errs = append(errs, fmt.Errorf("peer group %q: password must not contain spaces or control characters", g.Name))
		}
		if g.BFD && c.BFD.Name == "" {
			errs = append(errs, fmt.Errorf("peer group %q wants BFD but the router has no BFD profile", g.Name))
		}
		for _, p := range g.ListenRanges {
			if !p.IsValid() {
				errs = append(errs, fmt.Errorf("peer group %q: invalid listen range", g.Name))
			}
		}
		for _, a := range g.Neighbors {
			if !a.IsValid() || a.Zone() != "" {
				errs = append(errs, fmt.Errorf("peer group %q: invalid neighbor %v", g.Name, a))
			}
		}
		for _, f := range g.Families {
			if f != IPv4Unicast && f != IPv6Unicast {
				errs = append(errs, fmt.Errorf("peer group %q: unknown family %q", g.Name, f))
			}
		}
	}
	for _, l := range c.ExtraBGP {
		if strings.ContainsAny(l, "\n\r") {
			errs = append(errs, fmt.Errorf("extra bgp line %q spans lines", l))
		}
	}
	return errors.Join(errs...)
}

// families returns the families to activate for g.
func (g *PeerGroup) families() []Family {
	if len(g.Families) > 0 {
		return g.Families
	}
	var fs []Family
	add := func(is4 bool) {
		f := IPv6Unicast
		if is4 {
			f = IPv4Unicast
		}
		if !slices.Contains(fs, f) {
			fs = append(fs, f)
		}
	}
	for _, p := range g.ListenRanges {
		add(p.Addr().Is4())
	}
	for _, a := range g.Neighbors {
		add(a.Is4())
	}
	slices.Sort(fs)
	return fs
}

func (c *RouterConfig) maxPaths() int {
	if c.MaximumPaths > 0 {
		return c.MaximumPaths
	}
	return 16
}

// header is shared by every daemon's file. "frr defaults datacenter" must come
// first: it selects the defaults (short timers, no import check) that the
// rest of the file is read with. Logs go to stdout (--log stdout), which the
// lab sends to the daemon's log file.
func (c *RouterConfig) header() string {
	var b strings.Builder
	b.WriteString("frr defaults datacenter\n")
	if c.Hostname != "" {
		fmt.Fprintf(&b, "hostname %s\n", c.Hostname)
	}
	b.WriteString("log timestamp precision 3\n!\n")
	return b.String()
}

// RenderZebra renders zebra's config file.
func RenderZebra(c RouterConfig) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(c.header())
	// The lab also sets the sysctls; zebra would otherwise report and keep them off.
	b.WriteString("ip forwarding\nipv6 forwarding\n!\n")
	return b.String(), nil
}

// RenderBFDD renders bfdd's config file: only the profile, sessions come from bgpd.
func RenderBFDD(c RouterConfig) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(c.header())
	if p := c.BFD; p.Name != "" {
		fmt.Fprintf(&b, "bfd\n profile %s\n", p.Name)
		if p.DetectMultiplier > 0 {
			fmt.Fprintf(&b, "  detect-multiplier %d\n", p.DetectMultiplier)
		}
		if p.ReceiveIntervalMS > 0 {
			fmt.Fprintf(&b, "  receive-interval %d\n", p.ReceiveIntervalMS)
		}
		if p.TransmitIntervalMS > 0 {
			fmt.Fprintf(&b, "  transmit-interval %d\n", p.TransmitIntervalMS)
		}
		b.WriteString(" exit\nexit\n!\n")
	}
	return b.String(), nil
}

// denyAll is the route-map that keeps the router from advertising to nodes.
const denyAll = "LAB-DENY-ALL"

// RenderBGPD renders bgpd's config file.
func RenderBGPD(c RouterConfig) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	b.WriteString(c.header())
	if !c.SendRoutes {
		w("route-map %s deny 10", denyAll)
		w("exit")
		w("!")
	}
	w("router bgp %d", c.ASN)
	w(" bgp router-id %s", c.RouterID)
	w(" no bgp ebgp-requires-policy")
	// Families are activated explicitly per group below.
	w(" no bgp default ipv4-unicast")
	w(" no bgp network import-check")
	// ECMP across nodes even when each node has its own ASN.
	w(" bgp bestpath as-path multipath-relax")
	if c.GracefulRestart {
		w(" bgp graceful-restart")
		if c.StalePathTime > 0 {
			w(" bgp graceful-restart stalepath-time %d", c.StalePathTime)
		}
	}
	for _, g := range c.PeerGroups {
		w(" neighbor %s peer-group", g.Name)
		remote := "external"
		switch g.RemoteASN {
		case 0:
		case c.ASN:
			remote = "internal"
		default:
			remote = fmt.Sprint(g.RemoteASN)
		}
		w(" neighbor %s remote-as %s", g.Name, remote)
		if g.Password != "" {
			w(" neighbor %s password %s", g.Name, g.Password)
		}
		if g.HoldTime > 0 || g.KeepaliveTime > 0 {
			ka, ht := g.KeepaliveTime, g.HoldTime
			if ka == 0 {
				ka = max(ht/3, 1)
			}
			if ht == 0 {
				ht = 3 * ka
			}
			w(" neighbor %s timers %d %d", g.Name, ka, ht)
		}
		if g.BFD {
			w(" neighbor %s bfd", g.Name)
			w(" neighbor %s bfd profile %s", g.Name, c.BFD.Name)
		}
		for _, p := range g.ListenRanges {
			w(" bgp listen range %s peer-group %s", p.Masked(), g.Name)
		}
		for _, a := range g.Neighbors {
			w(" neighbor %s peer-group %s", a, g.Name)
		}
	}
	for _, l := range c.ExtraBGP {
		w(" %s", strings.TrimSpace(l))
	}
	for _, f := range []Family{IPv4Unicast, IPv6Unicast} {
		w(" !")
		w(" address-family %s unicast", f)
		w("  maximum-paths %d", c.maxPaths())
		w("  maximum-paths ibgp %d", c.maxPaths())
		for _, g := range c.PeerGroups {
			if !slices.Contains(g.families(), f) {
				continue
			}
			w("  neighbor %s activate", g.Name)
			if !c.SendRoutes {
				w("  neighbor %s route-map %s out", g.Name, denyAll)
			}
		}
		w(" exit-address-family")
	}
	w("exit")
	w("!")
	return b.String(), nil
}
