package bgp

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func testState() (state, *peerEntry, *peerEntry) {
	st := newState()
	a := st.newPeer(Peer{Name: "a", Address: netip.MustParseAddr("192.0.2.1"), ASN: 1})
	b := st.newPeer(Peer{Name: "b", Address: netip.MustParseAddr("2001:db8::1"), ASN: 1})
	return st, a, b
}

func TestResolve(t *testing.T) {
	st, a, _ := testState()
	o := newOp()
	attrs := Attributes{Communities: []uint32{7}}
	tags, errs := st.resolve(nil, Path{
		Prefix: netip.MustParsePrefix("192.0.2.10/32"),
		Peers:  map[string]Attributes{"a": attrs, "b": attrs, "ghost": {}, "broken": {}},
	}, map[string]bool{"broken": true}, o)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `unknown peer "ghost"`) {
		t.Errorf("errors %v, want only the unknown peer", errs)
	}
	if len(tags) != 1 || tags[0].peer != a.id {
		t.Fatalf("tags %v, want one for peer a (b is IPv6, broken is skipped)", tags)
	}
	again, _ := st.resolve(nil, Path{Prefix: netip.MustParsePrefix("192.0.2.11/32"), Peers: map[string]Attributes{"a": {Communities: []uint32{7, 7}}}}, nil, o)
	if again[0] != tags[0] {
		t.Errorf("equal attributes got two profiles: %v vs %v", again, tags)
	}
	if _, errs := st.resolve(nil, Path{Prefix: netip.MustParsePrefix("192.0.2.12/32"), Peers: map[string]Attributes{"a": {LocalPref: u32(0)}}}, nil, o); len(errs) != 1 {
		t.Errorf("local-pref 0 not reported: %v", errs)
	}
}

func TestSameLiveIgnoresRemovedPeers(t *testing.T) {
	st, a, b := testState()
	stale := tag{peer: 99, profile: 1} // peer 99 does not exist any more
	applied := []tag{{a.id, 1}, {b.id, 1}, stale}
	if !st.sameLive([]tag{{a.id, 1}, {b.id, 1}}, applied) {
		t.Error("stale tag of a removed peer counted as a difference")
	}
	if st.sameLive([]tag{{a.id, 1}}, applied) {
		t.Error("missing live tag not seen")
	}
	if st.sameLive([]tag{{a.id, 2}, {b.id, 1}}, applied) {
		t.Error("changed profile not seen")
	}
	if !st.sameLive(nil, []tag{stale}) {
		t.Error("only stale tags should equal no tags")
	}
}

func TestRefCountsAndUnusedStatements(t *testing.T) {
	st, a, _ := testState()
	t1, t2 := tag{a.id, 1}, tag{a.id, 2}
	st.stmts[t1] = &stmtEntry{name: "s1"}
	st.stmts[t2] = &stmtEntry{name: "s2", declared: true}
	p1, p2 := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32")

	o := newOp()
	st.setApplied(p1, []tag{t1}, o)
	st.setApplied(p2, []tag{t1}, o)
	if st.stmts[t1].refs != 2 || a.paths != 2 {
		t.Fatalf("refs %d paths %d, want 2 2", st.stmts[t1].refs, a.paths)
	}
	o = newOp()
	st.setApplied(p1, []tag{t2}, o) // p1 moves to profile 2
	if got := st.unused(o); len(got) != 0 {
		t.Errorf("unused %v while p2 still uses t1", got)
	}
	o = newOp()
	st.setWithdrawn(p2, o)
	if got := st.unused(o); !slices.Equal(got, []tag{t1}) {
		t.Errorf("unused = %v, want [t1]", got)
	}
	o = newOp()
	st.setWithdrawn(p1, o)
	if got := st.unused(o); len(got) != 0 {
		t.Errorf("declared statement reported unused: %v", got)
	}
	if a.paths != 0 || len(st.paths) != 0 {
		t.Errorf("paths %d applied %d after withdrawing all", a.paths, len(st.paths))
	}

	// A failed write keeps references for old and new tags.
	o = newOp()
	st.setApplied(p1, []tag{t1}, o)
	st.setUnknown(p1, []tag{t2})
	ap := st.paths[p1]
	if !ap.dirty || !slices.Equal(ap.tags, []tag{t1, t2}) || st.stmts[t1].refs != 1 || st.stmts[t2].refs != 1 {
		t.Errorf("after a failed write: %+v refs %d/%d", ap, st.stmts[t1].refs, st.stmts[t2].refs)
	}
}

func TestProfileGC(t *testing.T) {
	st, _, _ := testState()
	o := newOp()
	id, err := st.intern(Attributes{Communities: []uint32{1}}, o)
	if err != nil {
		t.Fatal(err)
	}
	st.gcProfiles(o)
	if _, ok := st.profileByID[id]; ok {
		t.Error("profile without statements kept")
	}
	id2, _ := st.intern(Attributes{Communities: []uint32{1}}, o)
	if id2 == id {
		t.Error("profile id reused: a stale tag could select the new profile")
	}
}
