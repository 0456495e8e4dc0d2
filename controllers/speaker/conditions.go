package speaker

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionReporter is implemented by a BGP backend with conditions of its
// own for the node's BGPNodeStatus (the frr-k8s backend: whether frr-k8s
// applied the node's configuration). The status writer sets them beside
// Ready and Draining; a condition keeps its transition time while its
// status does not change.
type ConditionReporter interface {
	Conditions(now time.Time) []metav1.Condition
}
