package app

import (
	"github.com/strata-metrics/strata/pkg/ingester"
	"github.com/strata-metrics/strata/pkg/ingester/client"
)

// localPushClients gives a distributor that runs in the same process as an ingester (-target=all) the
// ingester itself as the pusher of its own address: a function call on the encoded request's parts
// instead of a gRPC round trip to itself. The ingester runs the same push as for a remote call and
// returns the same status errors; the distributor keeps the request's buffer until every replica's push
// has returned, and the ingester keeps nothing of it (labels and metadata are copied). Pushes to other
// ingesters go through the pool.
type localPushClients struct {
	app *App
}

func (c localPushClients) PusherFor(addr string) (client.Pusher, error) {
	// Both fields are set while the modules are built, before any request is served.
	if c.app.ingester != nil && addr == c.app.localIngesterAddr {
		return c.app.ingester, nil
	}
	return c.app.ingesterClients.PusherFor(addr)
}

var _ client.Pusher = (*ingester.Ingester)(nil)
