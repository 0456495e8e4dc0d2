package bgp

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Defaults and limits applied by normalizePeer.
const (
	defaultHoldTime      = 90 * time.Second
	defaultConnectRetry  = 5 * time.Second
	defaultRestartTime   = 120 * time.Second
	maxRestartTime       = 4095 * time.Second // 12-bit field of the capability
	defaultBFDInterval   = 300 * time.Millisecond
	defaultBFDMultiplier = 3
	maxPasswordLen       = 80 // TCP_MD5SIG_MAXKEYLEN
	maxTimerSeconds      = 65535
)

// normalizePeer validates a peer and fills in defaults so that two
// configurations that mean the same thing compare equal.
func normalizePeer(p Peer) (Peer, error) {
	if p.Name == "" {
		return Peer{}, errors.New("peer has no name")
	}
	wrap := func(format string, args ...any) error {
		return fmt.Errorf("peer %q: %s", p.Name, fmt.Sprintf(format, args...))
	}
	if !p.Address.IsValid() || p.Address.IsUnspecified() || p.Address.IsMulticast() {
		return Peer{}, wrap("invalid address %v", p.Address)
	}
	if p.Address.Zone() != "" {
		return Peer{}, wrap("address %v: zones are not supported", p.Address)
	}
	p.Address = p.Address.Unmap()
	if p.ASN == 0 {
		return Peer{}, wrap("ASN must not be 0")
	}
	if p.SourceAddress.IsValid() {
		p.SourceAddress = p.SourceAddress.Unmap()
		if p.SourceAddress.Is4() != p.Address.Is4() {
			return Peer{}, wrap("source address %v and address %v are of different families", p.SourceAddress, p.Address)
		}
		if p.SourceAddress.Zone() != "" {
			return Peer{}, wrap("source address %v: zones are not supported", p.SourceAddress)
		}
	}
	var err error
	if p.HoldTime, err = seconds(p.HoldTime, defaultHoldTime); err != nil {
		return Peer{}, wrap("hold time: %v", err)
	}
	if p.HoldTime < 3*time.Second {
		return Peer{}, wrap("hold time %v is below the 3s minimum", p.HoldTime)
	}
	// Like routers, a third of the hold time rounded down, at least 1s (the
	// speaker passes the BGPPeer's EffectiveTimers, so this is for direct
	// callers only).
	if p.KeepaliveTime, err = seconds(p.KeepaliveTime, max((p.HoldTime/3).Truncate(time.Second), time.Second)); err != nil {
		return Peer{}, wrap("keepalive time: %v", err)
	}
	if p.KeepaliveTime >= p.HoldTime {
		return Peer{}, wrap("keepalive time %v must be shorter than hold time %v", p.KeepaliveTime, p.HoldTime)
	}
	if p.ConnectRetryTime, err = seconds(p.ConnectRetryTime, defaultConnectRetry); err != nil {
		return Peer{}, wrap("connect retry time: %v", err)
	}
	if len(p.Password) > maxPasswordLen {
		return Peer{}, wrap("password longer than %d bytes", maxPasswordLen)
	}
	if p.GracefulRestart.Enabled {
		if p.GracefulRestart.RestartTime, err = seconds(p.GracefulRestart.RestartTime, defaultRestartTime); err != nil {
			return Peer{}, wrap("restart time: %v", err)
		}
		if p.GracefulRestart.RestartTime > maxRestartTime {
			return Peer{}, wrap("restart time %v exceeds %v", p.GracefulRestart.RestartTime, maxRestartTime)
		}
	} else {
		p.GracefulRestart.RestartTime = 0
	}
	if p.BFD.Enabled {
		if p.BFD.MinRx, err = micros(p.BFD.MinRx); err != nil {
			return Peer{}, wrap("BFD receive interval: %v", err)
		}
		if p.BFD.MinTx, err = micros(p.BFD.MinTx); err != nil {
			return Peer{}, wrap("BFD transmit interval: %v", err)
		}
		if p.BFD.Multiplier == 0 {
			p.BFD.Multiplier = defaultBFDMultiplier
		}
		if p.BFD.Multiplier > 255 {
			return Peer{}, wrap("BFD multiplier %d exceeds 255", p.BFD.Multiplier)
		}
	} else {
		p.BFD = BFD{}
	}
	profiles := make([]Attributes, 0, len(p.Profiles))
	seen := make(map[string]bool, len(p.Profiles))
	for _, a := range p.Profiles {
		n, key, err := normalizeAttributes(a)
		if err != nil {
			return Peer{}, wrap("profile: %v", err)
		}
		if !seen[key] {
			seen[key] = true
			profiles = append(profiles, n)
		}
	}
	p.Profiles = profiles
	return p, nil
}

// isIBGP reports whether the session is iBGP given the global ASN.
func (p Peer) isIBGP(globalASN uint32) bool {
	if p.LocalASN != 0 {
		return p.ASN == p.LocalASN
	}
	return p.ASN == globalASN
}

// sessionEqual reports whether two normalized peers need the same BGP
// session, ignoring BFD (changed without a session reset) and Profiles
// (policy only).
func sessionEqual(a, b Peer) bool {
	return a.Name == b.Name && a.Address == b.Address && a.ASN == b.ASN &&
		a.LocalASN == b.LocalASN && a.Port == b.Port && a.SourceAddress == b.SourceAddress &&
		a.HoldTime == b.HoldTime && a.KeepaliveTime == b.KeepaliveTime &&
		a.ConnectRetryTime == b.ConnectRetryTime && a.EBGPMultihopTTL == b.EBGPMultihopTTL &&
		a.Password == b.Password && a.GracefulRestart == b.GracefulRestart
}

// seconds rounds a positive duration up to whole seconds; 0 gives def.
func seconds(d, def time.Duration) (time.Duration, error) {
	if d == 0 {
		d = def
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %v", d)
	}
	d = (d + time.Second - 1).Truncate(time.Second)
	if d > maxTimerSeconds*time.Second {
		return 0, fmt.Errorf("%v exceeds %ds", d, maxTimerSeconds)
	}
	return d, nil
}

// micros validates a BFD interval; 0 gives the default.
func micros(d time.Duration) (time.Duration, error) {
	if d == 0 {
		d = defaultBFDInterval
	}
	if d < time.Microsecond || d > time.Duration(^uint32(0))*time.Microsecond {
		return 0, fmt.Errorf("%v out of range", d)
	}
	return d.Truncate(time.Microsecond), nil
}

// normalizeAttributes sorts and deduplicates the communities and returns a
// canonical key: two Attributes with the same key produce the same UPDATE.
func normalizeAttributes(a Attributes) (Attributes, string, error) {
	if a.LocalPref != nil && *a.LocalPref == 0 {
		return Attributes{}, "", errors.New("local preference 0 is not supported")
	}
	if len(a.Communities) == 0 && len(a.LargeCommunities) == 0 && a.LocalPref == nil {
		return Attributes{}, "", nil // the common case: no attributes
	}
	var n Attributes
	if len(a.Communities) > 0 {
		n.Communities = slices.Clone(a.Communities)
		slices.Sort(n.Communities)
		n.Communities = slices.Compact(n.Communities)
	}
	if len(a.LargeCommunities) > 0 {
		n.LargeCommunities = slices.Clone(a.LargeCommunities)
		slices.SortFunc(n.LargeCommunities, compareLarge)
		n.LargeCommunities = slices.Compact(n.LargeCommunities)
	}
	if a.LocalPref != nil {
		v := *a.LocalPref
		n.LocalPref = &v
	}
	return n, string(appendKey(nil, n)), nil
}

// isNormalized reports whether a is already sorted and deduplicated, so
// that its key can be computed without copying it.
func isNormalized(a Attributes) bool {
	for i := 1; i < len(a.Communities); i++ {
		if a.Communities[i-1] >= a.Communities[i] {
			return false
		}
	}
	for i := 1; i < len(a.LargeCommunities); i++ {
		if compareLarge(a.LargeCommunities[i-1], a.LargeCommunities[i]) >= 0 {
			return false
		}
	}
	return a.LocalPref == nil || *a.LocalPref != 0
}

// appendKey appends the profile key of normalized attributes. Attributes
// without any value have the empty key.
func appendKey(key []byte, n Attributes) []byte {
	if len(n.Communities) == 0 && len(n.LargeCommunities) == 0 && n.LocalPref == nil {
		return key
	}
	key = binary.BigEndian.AppendUint16(key, uint16(len(n.Communities)))
	for _, c := range n.Communities {
		key = binary.BigEndian.AppendUint32(key, c)
	}
	key = binary.BigEndian.AppendUint16(key, uint16(len(n.LargeCommunities)))
	for _, c := range n.LargeCommunities {
		key = binary.BigEndian.AppendUint32(key, c.GlobalAdmin)
		key = binary.BigEndian.AppendUint32(key, c.LocalData1)
		key = binary.BigEndian.AppendUint32(key, c.LocalData2)
	}
	if n.LocalPref != nil {
		key = append(key, 1)
		key = binary.BigEndian.AppendUint32(key, *n.LocalPref)
	}
	return key
}

func compareLarge(a, b LargeCommunity) int {
	return cmp.Or(
		cmp.Compare(a.GlobalAdmin, b.GlobalAdmin),
		cmp.Compare(a.LocalData1, b.LocalData1),
		cmp.Compare(a.LocalData2, b.LocalData2),
	)
}

// checkPrefix validates a path prefix.
func checkPrefix(p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("invalid prefix %v", p)
	}
	if p.Addr().Zone() != "" || p.Addr().Is4In6() {
		return fmt.Errorf("prefix %v: zoned or IPv4-mapped addresses are not supported", p)
	}
	if p.Masked() != p {
		return fmt.Errorf("prefix %v has host bits set", p)
	}
	return nil
}
