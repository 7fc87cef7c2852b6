package querier

import (
	"context"
	"errors"

	"google.golang.org/grpc"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
)

// The fake ingester of the read tests has no cardinality answers: those are tested against real ones.

func (f *fakeIngester) TSDBStatus(context.Context, *ingesterpb.TSDBStatusRequest, ...grpc.CallOption) (*ingesterpb.TSDBStatusResponse, error) {
	return nil, errors.New("not implemented")
}

func (f *fakeIngester) LabelNamesCardinality(context.Context, *ingesterpb.LabelNamesCardinalityRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.LabelNamesCardinalityResponse], error) {
	return nil, errors.New("not implemented")
}

func (f *fakeIngester) LabelValuesCardinality(context.Context, *ingesterpb.LabelValuesCardinalityRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.LabelValuesCardinalityResponse], error) {
	return nil, errors.New("not implemented")
}

func (f *fakeIngester) ActiveSeries(context.Context, *ingesterpb.ActiveSeriesRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.ActiveSeriesResponse], error) {
	return nil, errors.New("not implemented")
}
