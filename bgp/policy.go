package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	api "github.com/osrg/gobgp/v4/api"
)

// Names of the GoBGP policy objects the speaker owns.
const (
	importPolicy = "bgplb-import"
	exportPolicy = "bgplb-export"
)

// installPolicies sets up the policies of a fresh GoBGP server: the import
// policy that keeps every route peers send out of the RIB, and the (still
// empty) export policy that installStatements fills per (peer, profile).
// Both default to reject.
func installPolicies(ctx context.Context, g *gobgp) error {
	// Import: accept our own paths (GoBGP runs local paths through the import
	// policy too), reject everything peers send.
	if err := g.addPolicy(ctx, &api.Policy{Name: importPolicy, Statements: []*api.Statement{{
		Name:       importPolicy + "-local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}}); err != nil {
		return fmt.Errorf("adding import policy: %w", err)
	}
	if err := g.addPolicyAssignment(ctx, &api.PolicyAssignment{
		Direction:     api.PolicyDirection_POLICY_DIRECTION_IMPORT,
		Policies:      []*api.Policy{{Name: importPolicy}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}); err != nil {
		return fmt.Errorf("assigning import policy: %w", err)
	}
	// Export: one statement per (peer, profile) in use; nothing else leaves.
	if err := g.addPolicy(ctx, &api.Policy{Name: exportPolicy}); err != nil {
		return fmt.Errorf("adding export policy: %w", err)
	}
	if err := g.addPolicyAssignment(ctx, &api.PolicyAssignment{
		Direction:     api.PolicyDirection_POLICY_DIRECTION_EXPORT,
		Policies:      []*api.Policy{{Name: exportPolicy}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}); err != nil {
		return fmt.Errorf("assigning export policy: %w", err)
	}
	return nil
}

// installStatements adds export statements (one large-community set each,
// then one AddPolicy call for all). It returns the tags that failed.
func (s *Speaker) installStatements(ctx context.Context, tags []tag, o *op) (map[tag]bool, []error) {
	if len(tags) == 0 {
		return nil, nil
	}
	var errs []error
	failed := make(map[tag]bool)
	var stmts []*api.Statement
	var ok []tag
	for _, t := range tags {
		prof := s.st.profileByID[t.profile]
		if prof == nil || s.st.peerByID[t.peer] == nil {
			failed[t] = true
			errs = append(errs, fmt.Errorf("internal error: statement for unknown peer or profile %v", t))
			continue
		}
		if err := s.g.addDefinedSet(ctx, tagSet(t)); err != nil {
			failed[t] = true
			errs = append(errs, fmt.Errorf("adding tag set %s: %w", tagSetName(t), err))
			continue
		}
		s.st.nextStmt++
		// Statement names are never reused, so a half-failed removal can
		// never block a later addition.
		name := "bgplb-s" + strconv.FormatUint(s.st.nextStmt, 10) + "-" + tagSetName(t)[len("bgplb-t-"):]
		stmts = append(stmts, statementFor(name, t, prof.attrs))
		ok = append(ok, t)
	}
	if len(stmts) == 0 {
		return failed, errs
	}
	if err := s.g.addPolicy(ctx, &api.Policy{Name: exportPolicy, Statements: stmts}); err != nil {
		errs = append(errs, fmt.Errorf("adding %d export statements: %w", len(stmts), err))
		for _, t := range ok {
			failed[t] = true
		}
		return failed, errs
	}
	for i, t := range ok {
		s.st.stmts[t] = &stmtEntry{name: stmts[i].Name}
		s.st.profileByID[t.profile].stmts++
		o.candidates[t] = true // removed at cleanup if nothing ends up using it
	}
	s.log.V(1).Info("export statements added", "count", len(ok))
	return failed, errs
}

// removeStatements takes statements out of the export policy (one call)
// and deletes them with their tag sets.
func (s *Speaker) removeStatements(ctx context.Context, tags []tag, o *op) []error {
	if len(tags) == 0 {
		return nil
	}
	pol := &api.Policy{Name: exportPolicy}
	for _, t := range tags {
		pol.Statements = append(pol.Statements, &api.Statement{Name: s.st.stmts[t].name})
	}
	if err := s.g.removeStatements(ctx, pol); err != nil {
		return []error{fmt.Errorf("removing %d export statements: %w", len(tags), err)}
	}
	for _, t := range tags {
		se := s.st.stmts[t]
		// Left-overs below are unreachable (not in the policy) and their
		// names are never reused: log, do not fail.
		if err := s.g.deleteStatement(ctx, se.name); err != nil {
			s.log.Error(err, "deleting export statement", "statement", se.name)
		}
		if err := s.g.deleteDefinedSet(ctx, tagSet(t)); err != nil {
			s.log.Error(err, "deleting tag set", "set", tagSetName(t))
		}
		delete(s.st.stmts, t)
		if p := s.st.profileByID[t.profile]; p != nil {
			p.stmts--
			o.profiles[t.profile] = true
		}
	}
	s.log.V(1).Info("export statements removed", "count", len(tags))
	return nil
}

// cleanup removes statements that lost their last path and declaration,
// then forgets unused profiles.
func (s *Speaker) cleanup(ctx context.Context, o *op) []error {
	errs := s.removeStatements(ctx, s.st.unused(o), o)
	s.st.gcProfiles(o)
	return errs
}

func neighborSetName(id uint32) string { return "bgplb-n-" + strconv.FormatUint(uint64(id), 10) }

// neighborSet matches the peer's address in its export statements.
func neighborSet(e *peerEntry) *api.DefinedSet {
	return &api.DefinedSet{
		DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR,
		Name:        neighborSetName(e.id),
		List:        []string{netip.PrefixFrom(e.cfg.Address, e.cfg.Address.BitLen()).String()},
	}
}

func tagSetName(t tag) string {
	return "bgplb-t-" + strconv.FormatUint(uint64(t.peer), 10) + "-" + strconv.FormatUint(uint64(t.profile), 10)
}

func tagString(t tag) string {
	return LargeCommunity{GlobalAdmin: tagASN, LocalData1: t.peer, LocalData2: t.profile}.String()
}

func tagSet(t tag) *api.DefinedSet {
	return &api.DefinedSet{
		DefinedType: api.DefinedType_DEFINED_TYPE_LARGE_COMMUNITY,
		Name:        tagSetName(t),
		List:        []string{tagString(t)}, // GoBGP anchors A:B:C as ^A:B:C$
	}
}

// statementFor builds the export statement of one (peer, profile): paths
// tagged for it go to that peer with the profile's attributes and without
// any internal tag.
func statementFor(name string, t tag, a Attributes) *api.Statement {
	actions := &api.Actions{
		RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
		// Replace, not add: the path's only large communities are our tags.
		LargeCommunity: &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE},
	}
	for _, c := range a.LargeCommunities {
		actions.LargeCommunity.Communities = append(actions.LargeCommunity.Communities, c.String())
	}
	if len(a.Communities) > 0 {
		actions.Community = &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE}
		for _, c := range a.Communities {
			actions.Community.Communities = append(actions.Community.Communities, strconv.FormatUint(uint64(c), 10))
		}
	}
	if a.LocalPref != nil {
		actions.LocalPref = &api.LocalPrefAction{Value: *a.LocalPref}
	}
	return &api.Statement{
		Name: name,
		Conditions: &api.Conditions{
			NeighborSet:       &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: neighborSetName(t.peer)},
			LargeCommunitySet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: tagSetName(t)},
		},
		Actions: actions,
	}
}
