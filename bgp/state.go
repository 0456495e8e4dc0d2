package bgp

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// tag marks a path, inside the speaker only, as going to one peer with one
// attribute profile. It is carried as the large community
// tagASN:peer:profile, matched by that (peer, profile)'s export statement
// and stripped by every export statement, so it never leaves the speaker.
type tag struct{ peer, profile uint32 }

// tagASN is the global administrator of internal tags. 4294967295 is
// reserved (RFC 7300) and never a real AS, so tags cannot collide with
// communities users configure (those are set by policy, never on the path).
const tagASN = 4294967295

func compareTags(a, b tag) int {
	if c := cmp.Compare(a.peer, b.peer); c != 0 {
		return c
	}
	return cmp.Compare(a.profile, b.profile)
}

// peerEntry is an applied peer.
type peerEntry struct {
	id         uint32
	cfg        Peer
	configured bool         // the neighbor exists in GoBGP
	declared   map[tag]bool // statements requested by cfg.Profiles
	paths      int          // applied paths carrying a tag for this peer
	bfdOn      bool         // GoBGP runs BFD for the current session (Speaker.syncBFD)
}

// peerAt returns the peer with address addr, if any.
func (st *state) peerAt(addr netip.Addr) *peerEntry {
	for _, e := range st.peers {
		if e.cfg.Address == addr {
			return e
		}
	}
	return nil
}

// profileEntry is one distinct set of attributes.
type profileEntry struct {
	id    uint32
	key   string
	attrs Attributes
	stmts int // installed statements using the profile
}

// stmtEntry is an export statement installed in GoBGP.
type stmtEntry struct {
	name     string
	refs     int  // applied paths carrying the tag
	declared bool // kept even without paths (Peer.Profiles)
}

// appliedPath is a path as GoBGP has it.
type appliedPath struct {
	// tags are exactly the tags sent to GoBGP; they may include tags of
	// peers removed since (stale tags match no statement and are harmless;
	// rewriting every path when a peer goes away would re-announce them).
	tags []tag
	// dirty means a GoBGP call about this path failed: its real state is
	// unknown and the next change rewrites it.
	dirty bool
	// epoch is the last Apply that found the path in the desired state.
	epoch uint64
}

// state is the speaker's record of what it configured in GoBGP. It holds no
// GoBGP objects; the methods here are pure bookkeeping.
type state struct {
	peers         map[string]*peerEntry
	peerByID      map[uint32]*peerEntry
	nextPeerID    uint32
	profiles      map[string]*profileEntry
	profileByID   map[uint32]*profileEntry
	nextProfileID uint32
	stmts         map[tag]*stmtEntry
	nextStmt      uint64
	paths         map[netip.Prefix]*appliedPath

	keyBuf []byte // scratch for profile keys
	epoch  uint64 // incremented by every Apply
}

func newState() state {
	return state{
		peers:       make(map[string]*peerEntry),
		peerByID:    make(map[uint32]*peerEntry),
		profiles:    make(map[string]*profileEntry),
		profileByID: make(map[uint32]*profileEntry),
		stmts:       make(map[tag]*stmtEntry),
		paths:       make(map[netip.Prefix]*appliedPath),
	}
}

// op collects what one Apply or UpdatePaths touched, so that cleanup costs
// O(changes), not O(table).
type op struct {
	candidates map[tag]bool    // statements that may have lost their last user
	profiles   map[uint32]bool // profiles that may have lost their last statement
}

func newOp() *op {
	return &op{candidates: make(map[tag]bool), profiles: make(map[uint32]bool)}
}

// newPeer registers a peer under a fresh id. Ids are never reused, so a
// stale tag can never select a later peer.
func (st *state) newPeer(p Peer) *peerEntry {
	st.nextPeerID++
	e := &peerEntry{id: st.nextPeerID, cfg: p, declared: map[tag]bool{}}
	st.peers[p.Name] = e
	st.peerByID[e.id] = e
	return e
}

func (st *state) dropPeer(e *peerEntry) {
	delete(st.peers, e.cfg.Name)
	delete(st.peerByID, e.id)
}

// intern returns the id of the profile for a, creating it if needed. Known,
// already normalized attributes are looked up without allocating: Apply
// interns every path of the table.
func (st *state) intern(a Attributes, o *op) (uint32, error) {
	if isNormalized(a) {
		st.keyBuf = appendKey(st.keyBuf[:0], a)
		if p, ok := st.profiles[string(st.keyBuf)]; ok {
			return p.id, nil
		}
	}
	n, key, err := normalizeAttributes(a)
	if err != nil {
		return 0, err
	}
	if p, ok := st.profiles[key]; ok {
		return p.id, nil
	}
	st.nextProfileID++
	p := &profileEntry{id: st.nextProfileID, key: key, attrs: n}
	st.profiles[key] = p
	st.profileByID[p.id] = p
	o.profiles[p.id] = true // dropped at cleanup unless a statement uses it
	return p.id, nil
}

// resolve appends a path's sorted tags to tags. Peers in skip (invalid or
// failed, already reported) are left out silently, as are peers of the
// other address family; unknown peers and bad attributes are errors.
func (st *state) resolve(tags []tag, p Path, skip map[string]bool, o *op) ([]tag, []error) {
	var errs []error
	for name, attrs := range p.Peers {
		e, ok := st.peers[name]
		if !ok {
			if !skip[name] {
				errs = append(errs, fmt.Errorf("path %v: unknown peer %q", p.Prefix, name))
			}
			continue
		}
		if e.cfg.Address.Is4() != p.Prefix.Addr().Is4() {
			continue // v4 prefixes go to v4 peers only, v6 to v6 only
		}
		id, err := st.intern(attrs, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("path %v, peer %q: %w", p.Prefix, name, err))
			continue
		}
		tags = append(tags, tag{peer: e.id, profile: id})
	}
	slices.SortFunc(tags, compareTags)
	return tags, errs
}

// sameLive reports whether the applied tags, ignoring tags of removed
// peers, equal the desired (sorted) tags.
func (st *state) sameLive(desired, applied []tag) bool {
	i := 0
	for _, t := range applied {
		if _, live := st.peerByID[t.peer]; !live {
			continue
		}
		if i >= len(desired) || desired[i] != t {
			return false
		}
		i++
	}
	return i == len(desired)
}

func (st *state) ref(tags []tag) {
	for _, t := range tags {
		if pe := st.peerByID[t.peer]; pe != nil {
			pe.paths++
		}
		if se := st.stmts[t]; se != nil {
			se.refs++
		}
	}
}

func (st *state) unref(tags []tag, o *op) {
	for _, t := range tags {
		if pe := st.peerByID[t.peer]; pe != nil {
			pe.paths--
		}
		if se := st.stmts[t]; se != nil {
			se.refs--
			o.candidates[t] = true
		}
	}
}

// setApplied records that GoBGP now has the path with these tags.
func (st *state) setApplied(prefix netip.Prefix, tags []tag, o *op) {
	if ap := st.paths[prefix]; ap != nil {
		st.unref(ap.tags, o)
	}
	st.ref(tags)
	st.paths[prefix] = &appliedPath{tags: tags}
}

// setUnknown records that writing the path failed: GoBGP has either the old
// or the new tags, so references are kept for both until the next write.
func (st *state) setUnknown(prefix netip.Prefix, tags []tag) {
	ap := st.paths[prefix]
	if ap == nil {
		ap = &appliedPath{}
		st.paths[prefix] = ap
	}
	for _, t := range tags {
		if !slices.Contains(ap.tags, t) {
			ap.tags = append(ap.tags, t)
			st.ref([]tag{t})
		}
	}
	slices.SortFunc(ap.tags, compareTags)
	ap.dirty = true
}

// setWithdrawn records that GoBGP no longer has the path.
func (st *state) setWithdrawn(prefix netip.Prefix, o *op) {
	if ap := st.paths[prefix]; ap != nil {
		st.unref(ap.tags, o)
		delete(st.paths, prefix)
	}
}

// unused returns the touched statements that no path and no declaration
// needs any more, in a stable order.
func (st *state) unused(o *op) []tag {
	var out []tag
	for t := range o.candidates {
		if se := st.stmts[t]; se != nil && se.refs <= 0 && !se.declared {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, compareTags)
	return out
}

// statementsOf returns the installed statements of one peer.
func (st *state) statementsOf(peerID uint32) []tag {
	var out []tag
	for t := range st.stmts {
		if t.peer == peerID {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, compareTags)
	return out
}

// gcProfiles forgets touched profiles that no statement uses.
func (st *state) gcProfiles(o *op) {
	for id := range o.profiles {
		if p := st.profileByID[id]; p != nil && p.stmts <= 0 {
			delete(st.profiles, p.key)
			delete(st.profileByID, id)
		}
	}
}
