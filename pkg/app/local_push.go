package app

import (
	"context"

	"google.golang.org/grpc"

	"github.com/strata-metrics/strata/pkg/ingester"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
)

// localPushClients gives a distributor that runs in the same process as an ingester (-target=all) a
// function call instead of a gRPC round trip to itself when it pushes to that ingester. The ingester
// runs the very Push it runs for a remote call, on the same encoded request, and returns the same status
// errors; the distributor keeps the request's buffer until every replica's Push has returned, and the
// ingester keeps nothing of it (labels and metadata are copied). Reads, and pushes to other ingesters,
// go through the pool.
type localPushClients struct {
	app *App
}

func (c localPushClients) GetClientFor(addr string) (ingesterpb.IngesterClient, error) {
	remote, err := c.app.ingesterClients.GetClientFor(addr)
	if err != nil {
		return nil, err
	}
	// Both fields are set while the modules are built, before any request is served.
	if c.app.ingester != nil && addr == c.app.localIngesterAddr {
		return localPushClient{IngesterClient: remote, ingester: c.app.ingester}, nil
	}
	return remote, nil
}

type localPushClient struct {
	ingesterpb.IngesterClient
	ingester *ingester.Ingester
}

// Push calls the local ingester directly. The tenant travels in ctx, where the gRPC path's server
// interceptor would have put it.
func (c localPushClient) Push(ctx context.Context, req *ingesterpb.PushRequest, _ ...grpc.CallOption) (*ingesterpb.PushResponse, error) {
	return c.ingester.Push(ctx, req)
}
