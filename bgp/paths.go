package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// pathChange is the desired tags of one prefix; no tags means withdraw.
type pathChange struct {
	prefix netip.Prefix
	tags   []tag
}

// UpdatePaths adds or replaces the given paths and withdraws the given
// prefixes, leaving every other path alone. Unlike Apply, whose diff walks
// the whole desired table, its cost is proportional to the number of paths
// passed, so a reconciler that knows which Service changed can use it. The
// peers named in the paths must have been applied with Apply.
func (s *Speaker) UpdatePaths(ctx context.Context, upsert []Path, withdraw []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if s.g == nil {
		return errors.New("bgp speaker not started: call Apply first")
	}
	o := newOp()
	changes, errs := s.pathUpdates(upsert, withdraw, o)
	errs = append(errs, s.applyPathChanges(ctx, changes, o)...)
	errs = append(errs, s.cleanup(ctx, o)...)
	return errors.Join(errs...)
}

// pathUpdates turns UpdatePaths' arguments into changes, rejecting invalid
// and repeated prefixes.
func (s *Speaker) pathUpdates(upsert []Path, withdraw []netip.Prefix, o *op) ([]pathChange, []error) {
	var errs []error
	changes := make([]pathChange, 0, len(upsert)+len(withdraw))
	seen := make(map[netip.Prefix]bool, len(upsert)+len(withdraw))
	for _, p := range upsert {
		if err := checkPrefix(p.Prefix); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[p.Prefix] {
			errs = append(errs, fmt.Errorf("path %v: duplicate prefix", p.Prefix))
			continue
		}
		seen[p.Prefix] = true
		tags, terrs := s.st.resolve(nil, p, nil, o)
		errs = append(errs, terrs...)
		changes = append(changes, pathChange{prefix: p.Prefix, tags: tags})
	}
	for _, prefix := range withdraw {
		if err := checkPrefix(prefix); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[prefix] {
			errs = append(errs, fmt.Errorf("path %v: both updated and withdrawn", prefix))
			continue
		}
		seen[prefix] = true
		changes = append(changes, pathChange{prefix: prefix})
	}
	return changes, errs
}

// diffPaths compares the complete desired table with the applied paths and
// returns the changes: new or changed paths, and withdrawals of applied
// paths no longer desired. Peers in skip are left out of the tags.
//
// The diff walks the whole table: it is kept cheap and allocation-free for
// paths that did not change. Applied paths are marked with the epoch of
// this Apply instead of collecting desired prefixes in a set.
func (s *Speaker) diffPaths(desired []Path, skip map[string]bool, o *op) ([]pathChange, []error) {
	var errs []error
	s.st.epoch++
	epoch := s.st.epoch
	var changes []pathChange
	var fresh map[netip.Prefix]bool // desired prefixes not applied yet
	visited := 0
	var buf []tag
	for _, p := range desired {
		if err := checkPrefix(p.Prefix); err != nil {
			errs = append(errs, err)
			continue
		}
		ap := s.st.paths[p.Prefix]
		switch {
		case ap != nil && ap.epoch == epoch, ap == nil && fresh[p.Prefix]:
			errs = append(errs, fmt.Errorf("path %v: duplicate prefix", p.Prefix))
			continue
		case ap != nil:
			ap.epoch = epoch
			visited++
		default:
			if fresh == nil {
				fresh = make(map[netip.Prefix]bool)
			}
			fresh[p.Prefix] = true
		}
		var terrs []error
		buf, terrs = s.st.resolve(buf[:0], p, skip, o)
		errs = append(errs, terrs...)
		if ap != nil && !ap.dirty && s.st.sameLive(buf, ap.tags) {
			continue
		}
		changes = append(changes, pathChange{prefix: p.Prefix, tags: slices.Clone(buf)})
	}
	if visited < len(s.st.paths) {
		for prefix, ap := range s.st.paths {
			if ap.epoch != epoch {
				changes = append(changes, pathChange{prefix: prefix})
			}
		}
	}
	return changes, errs
}

// applyPathChanges installs missing statements, then sends GoBGP the paths
// whose tags differ from what it has, in batches.
func (s *Speaker) applyPathChanges(ctx context.Context, changes []pathChange, o *op) []error {
	failed, errs := s.installStatements(ctx, s.missingStatements(changes), o)
	adds, dels := s.effectiveChanges(changes, failed)
	errs = append(errs, s.announce(adds, o)...)
	errs = append(errs, s.withdraw(dels, o)...)
	if len(adds)+len(dels) > 0 {
		s.log.V(1).Info("paths applied", "announced", len(adds), "withdrawn", len(dels), "total", len(s.st.paths))
	}
	return errs
}

// missingStatements returns the tags of changes that have no export
// statement yet, sorted.
func (s *Speaker) missingStatements(changes []pathChange) []tag {
	var need []tag
	needed := make(map[tag]bool)
	for _, c := range changes {
		for _, t := range c.tags {
			if s.st.stmts[t] == nil && !needed[t] {
				needed[t] = true
				need = append(need, t)
			}
		}
	}
	slices.SortFunc(need, compareTags)
	return need
}

// effectiveChanges splits changes into paths to announce and prefixes to
// withdraw, dropping those GoBGP already has as desired and tags whose
// statement failed to install.
func (s *Speaker) effectiveChanges(changes []pathChange, failed map[tag]bool) (adds, dels []pathChange) {
	for _, c := range changes {
		tags := c.tags
		if len(failed) > 0 {
			// Without its statement a tag would not reach the peer and the
			// path would look applied: leave it out so a later call adds it.
			tags = slices.DeleteFunc(slices.Clone(tags), func(t tag) bool { return failed[t] })
		}
		ap := s.st.paths[c.prefix]
		if len(tags) == 0 {
			if ap != nil {
				dels = append(dels, pathChange{prefix: c.prefix})
			}
			continue
		}
		if ap != nil && !ap.dirty && s.st.sameLive(tags, ap.tags) {
			continue
		}
		adds = append(adds, pathChange{prefix: c.prefix, tags: tags})
	}
	return adds, dels
}

// announce adds or replaces paths in batches of Options.BatchSize. A failed
// batch leaves its paths in an unknown state, rewritten by the next change.
func (s *Speaker) announce(adds []pathChange, o *op) []error {
	var errs []error
	for batch := range slices.Chunk(adds, s.opts.BatchSize) {
		paths := make([]*apiutil.Path, len(batch))
		for i, c := range batch {
			paths[i] = buildPath(c.prefix, c.tags, false)
		}
		if err := s.g.addPaths(paths); err != nil {
			errs = append(errs, fmt.Errorf("adding %d paths: %w", len(batch), err))
			for _, c := range batch {
				s.st.setUnknown(c.prefix, c.tags)
			}
			continue
		}
		for _, c := range batch {
			s.st.setApplied(c.prefix, c.tags, o)
		}
	}
	return errs
}

// withdraw withdraws paths by path in batches of Options.BatchSize.
func (s *Speaker) withdraw(dels []pathChange, o *op) []error {
	var errs []error
	for batch := range slices.Chunk(dels, s.opts.BatchSize) {
		paths := make([]*apiutil.Path, len(batch))
		for i, c := range batch {
			paths[i] = buildPath(c.prefix, nil, true)
		}
		if err := s.g.deletePaths(paths); err != nil {
			errs = append(errs, fmt.Errorf("withdrawing %d paths: %w", len(batch), err))
			for _, c := range batch {
				s.st.setUnknown(c.prefix, nil)
			}
			continue
		}
		for _, c := range batch {
			s.st.setWithdrawn(c.prefix, o)
		}
	}
	return errs
}

// buildPath makes the GoBGP path for a prefix. The next hop is unspecified
// (0.0.0.0 or ::), which GoBGP replaces with the local address of each
// session when it exports the path.
func buildPath(prefix netip.Prefix, tags []tag, withdraw bool) *apiutil.Path {
	family, nh := bgp.RF_IPv4_UC, netip.IPv4Unspecified()
	if prefix.Addr().Is6() {
		family, nh = bgp.RF_IPv6_UC, netip.IPv6Unspecified()
	}
	nlri, _ := bgp.NewIPAddrPrefix(prefix)       // error only for invalid prefixes, checked before
	nhAttr, _ := bgp.NewPathAttributeNextHop(nh) // error only for invalid addresses
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP), nhAttr}
	if !withdraw {
		lcs := make([]*bgp.LargeCommunity, len(tags))
		for i, t := range tags {
			lcs[i] = bgp.NewLargeCommunity(tagASN, t.peer, t.profile)
		}
		attrs = append(attrs, bgp.NewPathAttributeLargeCommunities(lcs))
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs, Withdrawal: withdraw}
}
