package validation

import (
	"fmt"

	"github.com/prometheus/prometheus/prompb"
)

// ValidateMetadata checks one metric metadata entry of a remote-write request: it must name its metric
// family, and its name, help and unit must each fit -validation.max-metadata-length.
func ValidateMetadata(l *Limits, m *prompb.MetricMetadata) error {
	if m.MetricFamilyName == "" {
		return &Error{
			Reason:  ReasonMetadataMissingMetricName,
			Message: fmt.Sprintf("metric metadata has no metric family name (type %s, help %s)", m.Type, quoted(m.Help)),
		}
	}
	for _, field := range [...]struct{ name, value string }{
		{"metric family name", m.MetricFamilyName},
		{"help", m.Help},
		{"unit", m.Unit},
	} {
		if len(field.value) > l.MaxMetadataLength {
			return &Error{
				Reason: ReasonMetricMetadataTooLong,
				Message: fmt.Sprintf("%s in the metadata of metric family %s is %d bytes long, limit is %d",
					field.name, quoted(m.MetricFamilyName), len(field.value), l.MaxMetadataLength),
				Flag: "-" + FlagOf("max_metadata_length"),
			}
		}
	}
	return nil
}
