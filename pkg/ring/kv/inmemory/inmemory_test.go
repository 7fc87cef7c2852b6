package inmemory

import (
	"testing"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/ring/kv/kvtest"
)

func TestClient_Conformance(t *testing.T) {
	kvtest.RunClientConformance(t, func(_ *testing.T, codec kv.Codec) kv.Client {
		return New(codec)
	}, kvtest.Options{MaxCASRetries: maxCASRetries})
}
