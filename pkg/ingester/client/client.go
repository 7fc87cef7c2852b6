// Package client is the ingester's gRPC client for distributors and queriers: the pool's connections as
// ingester clients, and the push of an encoded request written as its parts.
package client

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/strata-metrics/strata/pkg/grpcclient"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
)

// ReadMethods are the ingester's idempotent read calls, which the pool retries.
var ReadMethods = []string{
	"strata.ingester.Ingester/QueryStream",
	"strata.ingester.Ingester/LabelNames",
	"strata.ingester.Ingester/LabelValues",
	"strata.ingester.Ingester/Series",
	"strata.ingester.Ingester/MetricsMetadata",
}

// Pusher writes a distributor's encoded request to one ingester. The gRPC client and, in a process that
// runs both, the ingester itself implement it.
type Pusher interface {
	PushEncoded(ctx context.Context, req *ingesterpb.EncodedPushRequest) error
}

// Pool is the connections to ingesters (flags -ingester.client.*).
type Pool struct {
	*grpcclient.Pool
}

// NewPool returns an empty pool of connections to ingesters.
func NewPool(cfg grpcclient.Config, reg prometheus.Registerer, logger *slog.Logger) *Pool {
	return &Pool{Pool: grpcclient.NewPool("ingester", ReadMethods, cfg, reg, logger)}
}

// GetClientFor returns the client of the ingester at addr.
func (p *Pool) GetClientFor(addr string) (ingesterpb.IngesterClient, error) {
	return p.client(addr)
}

// PusherFor returns the pusher of the ingester at addr.
func (p *Pool) PusherFor(addr string) (Pusher, error) {
	return p.client(addr)
}

func (p *Pool) client(addr string) (IngesterClient, error) {
	conn, err := p.Conn(addr)
	if err != nil {
		return IngesterClient{}, err
	}
	return IngesterClient{IngesterClient: ingesterpb.NewIngesterClient(conn), conn: conn}, nil
}

// IngesterClient is the generated client that also pushes an EncodedPushRequest.
type IngesterClient struct {
	ingesterpb.IngesterClient
	conn *grpc.ClientConn
}

// PushEncoded is Push for a request whose bytes gRPC writes as they are, without assembling them first.
func (c IngesterClient) PushEncoded(ctx context.Context, req *ingesterpb.EncodedPushRequest) error {
	return c.conn.Invoke(ctx, ingesterpb.Ingester_Push_FullMethodName, req, new(ingesterpb.PushResponse), grpc.ForceCodecV2(ingesterpb.PushCodec))
}
