package validation_test

import (
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

func TestValidateMetadata(t *testing.T) {
	const flagMetadata = "(-validation.max-metadata-length)"
	atLimit := strings.Repeat("x", 1024)
	overLimit := strings.Repeat("x", 1025)
	tests := []struct {
		name       string
		m          prompb.MetricMetadata
		wantReason string // "" when the metadata is accepted
		wantMsg    string
	}{
		{name: "valid", m: prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests_total",
			Help: "Requests served.", Unit: "requests"}},
		{name: "name only", m: prompb.MetricMetadata{MetricFamilyName: "up"}},
		{name: "every field at the limit", m: prompb.MetricMetadata{MetricFamilyName: atLimit, Help: atLimit, Unit: atLimit}},

		{name: "missing name", m: prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, Help: "Temperature."},
			wantReason: validation.ReasonMetadataMissingMetricName,
			wantMsg:    `metric metadata has no metric family name (type GAUGE, help "Temperature.")`},
		{name: "name too long", m: prompb.MetricMetadata{MetricFamilyName: overLimit},
			wantReason: validation.ReasonMetricMetadataTooLong,
			wantMsg:    "metric family name in the metadata of metric family \"xxx", // shortened in the message
		},
		{name: "help too long", m: prompb.MetricMetadata{MetricFamilyName: "up", Help: overLimit},
			wantReason: validation.ReasonMetricMetadataTooLong,
			wantMsg:    `help in the metadata of metric family "up" is 1025 bytes long, limit is 1024 ` + flagMetadata},
		{name: "unit too long", m: prompb.MetricMetadata{MetricFamilyName: "up", Unit: overLimit},
			wantReason: validation.ReasonMetricMetadataTooLong,
			wantMsg:    `unit in the metadata of metric family "up" is 1025 bytes long, limit is 1024 ` + flagMetadata},
	}
	limits := defaultLimits(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validation.ValidateMetadata(limits, &tc.m)
			if tc.wantReason == "" {
				require.NoError(t, err)
				return
			}
			requireReason(t, err, tc.wantReason)
			require.Contains(t, err.Error(), tc.wantMsg)
			if tc.wantReason == validation.ReasonMetricMetadataTooLong {
				require.Contains(t, err.Error(), flagMetadata)
			}
		})
	}
}
