// Package patch builds every patch bgplb's controllers send for status and
// metadata writes, in the spirit of cluster-api's util/patch but small. A
// patch is either
//   - computed from a typed before/after pair (MergeFrom: a JSON merge
//     patch, RFC 7386, by controller-runtime), or
//   - the whole of a typed status value (Status, StatusBody), encoded by
//     encoding/json,
//
// and either may carry the resourceVersion it was computed from, so that
// the API server refuses it with a Conflict once the object has changed
// (optimistic locking). Nothing here, and no caller, formats JSON by hand.
package patch

import (
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Lock says whether a patch applies only to the version of the object it
// was computed from.
type Lock bool

const (
	// Optimistic patches carry the resourceVersion they were computed
	// from; the API server refuses them with a Conflict when the object
	// has changed since.
	Optimistic Lock = true
	// LastWriteWins patches carry no resourceVersion: they apply to
	// whatever version the object has.
	LastWriteWins Lock = false
)

// MergeFrom returns a JSON merge patch that takes before to the object the
// patch is sent with (its modified copy). With Optimistic it carries
// before's resourceVersion.
func MergeFrom(before client.Object, lock Lock) client.Patch {
	if lock == Optimistic {
		return client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	}
	return client.MergeFrom(before)
}

// Status returns a patch of type pt (a JSON merge patch, or a strategic
// merge patch for built-in kinds) that sets the object's status to status:
// see StatusBody.
func Status(pt types.PatchType, resourceVersion string, status any) (client.Patch, error) {
	if pt != types.MergePatchType && pt != types.StrategicMergePatchType {
		return nil, fmt.Errorf("a status patch is a merge or strategic merge patch, not %s", pt)
	}
	b, err := StatusBody(resourceVersion, status)
	if err != nil {
		return nil, err
	}
	return client.RawPatch(pt, b), nil
}

// StatusBody is the body of a merge (or strategic merge) patch that sets
// the object's status to status, as encoding/json renders it: the fields it
// leaves out (omitempty) stay as they are on the server. A non-empty
// resourceVersion becomes metadata.resourceVersion, the optimistic lock.
func StatusBody(resourceVersion string, status any) ([]byte, error) {
	if status == nil {
		return nil, errors.New("a status patch needs a status")
	}
	p := body{Status: status}
	if resourceVersion != "" {
		p.Metadata = &metadata{ResourceVersion: resourceVersion}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding status patch: %w", err)
	}
	return b, nil
}

// body is a status patch; metadata first, as a map would render it.
type body struct {
	Metadata *metadata `json:"metadata,omitempty"`
	Status   any       `json:"status"`
}

type metadata struct {
	ResourceVersion string `json:"resourceVersion"`
}
