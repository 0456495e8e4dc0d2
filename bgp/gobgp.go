package bgp

import (
	"context"
	"maps"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// gobgp wraps the embedded *server.BgpServer. Every call the speaker makes
// goes through it and is counted, so tests can prove that one Service change
// costs O(1) GoBGP calls whatever the table size. Each call is one trip
// through GoBGP's single management loop.
type gobgp struct {
	srv *server.BgpServer

	mu    sync.Mutex
	calls map[string]int
}

func (g *gobgp) count(name string) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[string]int)
	}
	g.calls[name]++
	g.mu.Unlock()
}

// callCounts returns a copy of the per-method call counters.
func (g *gobgp) callCounts() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.calls)
}

func (g *gobgp) startBgp(ctx context.Context, global *api.Global) error {
	g.count("StartBgp")
	return g.srv.StartBgp(ctx, &api.StartBgpRequest{Global: global})
}

func (g *gobgp) stopBgp(ctx context.Context, allowGracefulRestart bool) error {
	g.count("StopBgp")
	return g.srv.StopBgp(ctx, &api.StopBgpRequest{AllowGracefulRestart: allowGracefulRestart})
}

func (g *gobgp) addPeer(ctx context.Context, p *api.Peer) error {
	g.count("AddPeer")
	return g.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p})
}

func (g *gobgp) updatePeer(ctx context.Context, p *api.Peer) error {
	g.count("UpdatePeer")
	_, err := g.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: p})
	return err
}

func (g *gobgp) deletePeer(ctx context.Context, addr string) error {
	g.count("DeletePeer")
	return g.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr})
}

func (g *gobgp) listPeer(ctx context.Context, fn func(*api.Peer)) error {
	g.count("ListPeer")
	return g.srv.ListPeer(ctx, &api.ListPeerRequest{}, fn)
}

func (g *gobgp) addPaths(paths []*apiutil.Path) error {
	g.count("AddPath")
	_, err := g.srv.AddPath(apiutil.AddPathRequest{Paths: paths})
	return err
}

// deletePaths withdraws paths by path (never by UUID: UUID deletion scans
// the whole RIB).
func (g *gobgp) deletePaths(paths []*apiutil.Path) error {
	g.count("DeletePath")
	return g.srv.DeletePath(apiutil.DeletePathRequest{Paths: paths})
}

func (g *gobgp) addDefinedSet(ctx context.Context, ds *api.DefinedSet) error {
	g.count("AddDefinedSet")
	return g.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds, Replace: true})
}

func (g *gobgp) deleteDefinedSet(ctx context.Context, ds *api.DefinedSet) error {
	g.count("DeleteDefinedSet")
	return g.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: ds, All: true})
}

// addPolicy creates the policy or appends statements to it.
func (g *gobgp) addPolicy(ctx context.Context, p *api.Policy) error {
	g.count("AddPolicy")
	return g.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: p})
}

// removeStatements removes the named statements from a policy, keeping the
// policy and its assignment.
func (g *gobgp) removeStatements(ctx context.Context, p *api.Policy) error {
	g.count("DeletePolicy")
	return g.srv.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: p, All: false, PreserveStatements: true})
}

func (g *gobgp) deleteStatement(ctx context.Context, name string) error {
	g.count("DeleteStatement")
	return g.srv.DeleteStatement(ctx, &api.DeleteStatementRequest{Statement: &api.Statement{Name: name}, All: true})
}

func (g *gobgp) addPolicyAssignment(ctx context.Context, a *api.PolicyAssignment) error {
	g.count("AddPolicyAssignment")
	return g.srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: a})
}

func (g *gobgp) watchPeers(ctx context.Context, fn func(*apiutil.WatchEventMessage_PeerEvent, time.Time)) error {
	g.count("WatchEvent")
	return g.srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnPeerUpdate: fn}, server.WatchPeer())
}
