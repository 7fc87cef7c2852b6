package app

import (
	"context"

	"google.golang.org/grpc"

	"github.com/strata-metrics/strata/pkg/ingester"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
)

// ingesterReadClients gives the querier a client per ingester address. For the ingester of this process
// (-target=all), QueryStream, which carries a query's chunks, is a call on the ingester itself instead
// of a gRPC round trip over loopback (a fifth of a refreshed dashboard's recent part); its other methods,
// whose strings may point into memory the ingester's TSDB reuses once a read is closed, stay on gRPC,
// which copies them.
type ingesterReadClients struct{ app *App }

func (c ingesterReadClients) GetClientFor(addr string) (ingesterpb.IngesterClient, error) {
	remote, err := c.app.ingesterClients.GetClientFor(addr)
	if err != nil {
		return nil, err
	}
	// Both fields are set while the modules are built, before any query is served.
	if ing := c.app.ingester; ing != nil && addr == c.app.localIngesterAddr {
		return localIngester{IngesterClient: remote, ing: ing}, nil
	}
	return remote, nil
}

type localIngester struct {
	ingesterpb.IngesterClient
	ing *ingester.Ingester
}

func (l localIngester) QueryStream(ctx context.Context, req *ingesterpb.QueryRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.QueryStreamResponse], error) {
	return startLocalStream(ctx, req, func(req *ingesterpb.QueryRequest, srv grpc.ServerStreamingServer[ingesterpb.QueryStreamResponse]) error {
		return l.ing.QueryStream(req, copyingChunksStream{srv})
	}), nil
}

// copyingChunksStream copies the chunks of every message before passing it on. The ingester's chunks
// point into its head and memory-mapped files, valid only until its read is closed, which gRPC's
// encoding would have copied too; one allocation per message holds them all. Label strings need no
// copy: in Prometheus' default (stringlabels) build a series' labels are one immutable heap string,
// never a view of a memory-mapped index.
type copyingChunksStream struct {
	grpc.ServerStreamingServer[ingesterpb.QueryStreamResponse]
}

func (s copyingChunksStream) Send(m *ingesterpb.QueryStreamResponse) error {
	size := 0
	for _, ps := range m.Series {
		for _, c := range ps.Chunks {
			size += len(c.Data)
		}
	}
	copies := make([]byte, 0, size)
	for _, ps := range m.Series {
		for _, c := range ps.Chunks {
			start := len(copies)
			copies = append(copies, c.Data...)
			c.Data = copies[start:len(copies):len(copies)]
		}
	}
	return s.ServerStreamingServer.Send(m)
}
