package ipam

import (
	"context"
	"fmt"
	"net/http"

	"k8s.io/apimachinery/pkg/runtime"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
)

// EventBroadcaster returns an events.k8s.io broadcaster that talks
// protobuf. The manager's own recorder sends JSON; the controller writes
// one event per Service change, so during a burst events are a third of
// its writes, and protobuf is the cheaper encoding for the API server.
func EventBroadcaster(cfg *rest.Config, hc *http.Client) (events.EventBroadcaster, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cl, err := eventsv1client.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("creating the events client: %w", err)
	}
	return events.NewBroadcaster(&events.EventSinkImpl{Interface: cl}), nil
}

// newEventRecorder returns a recorder on an EventBroadcaster that the
// manager starts before the controllers, and flushes and stops after them.
func newEventRecorder(mgr ctrl.Manager, name string) (events.EventRecorder, error) {
	b, err := EventBroadcaster(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(broadcasterRunnable{b}); err != nil {
		return nil, fmt.Errorf("adding the event broadcaster: %w", err)
	}
	return b.NewRecorder(mgr.GetScheme(), name), nil
}

// broadcasterRunnable runs an EventBroadcaster on every replica, leader or
// not, so it is recording before any controller can emit an event.
type broadcasterRunnable struct{ b events.EventBroadcaster }

// Start implements manager.Runnable.
func (r broadcasterRunnable) Start(ctx context.Context) error {
	if err := r.b.StartRecordingToSinkWithContext(ctx); err != nil {
		return fmt.Errorf("starting the event broadcaster: %w", err)
	}
	<-ctx.Done()
	r.b.Shutdown()
	return nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (broadcasterRunnable) NeedLeaderElection() bool { return false }
