package validation

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Flag names of the limits. Error messages quote them, so they are kept in one place.
const (
	flagMaxLabelNamesPerSeries = "validation.max-label-names-per-series"
	flagMaxLabelNameLength     = "validation.max-length-label-name"
	flagMaxLabelValueLength    = "validation.max-length-label-value"
	flagCreationGracePeriod    = "validation.create-grace-period"
	flagMaxMetadataLength      = "validation.max-metadata-length"
)

// Limits bound what a tenant may write. Every tenant has the same limits, set by flags; there are no
// per-tenant overrides yet. Lengths are in bytes.
type Limits struct {
	// MaxLabelNamesPerSeries is the most labels a series may have, __name__ included.
	MaxLabelNamesPerSeries int
	// MaxLabelNameLength is the longest label name.
	MaxLabelNameLength int
	// MaxLabelValueLength is the longest label value, the metric name included.
	MaxLabelValueLength int
	// CreationGracePeriod is how far past the receiver's clock a sample may be. A small allowance absorbs
	// clock skew; more would let a bad clock write data that hides the real "latest" sample.
	CreationGracePeriod time.Duration
	// MaxMetadataLength is the longest metric family name, help or unit in metric metadata.
	MaxMetadataLength int
}

// RegisterFlags registers the limits' flags with their defaults.
func (l *Limits) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&l.MaxLabelNamesPerSeries, flagMaxLabelNamesPerSeries, 30,
		"Maximum number of labels a series may have, __name__ included. Series with more are rejected.")
	f.IntVar(&l.MaxLabelNameLength, flagMaxLabelNameLength, 1024,
		"Maximum length of a label name, in bytes. Series with a longer label name are rejected.")
	f.IntVar(&l.MaxLabelValueLength, flagMaxLabelValueLength, 2048,
		"Maximum length of a label value (the metric name included), in bytes. Series with a longer value are rejected.")
	f.DurationVar(&l.CreationGracePeriod, flagCreationGracePeriod, 10*time.Minute,
		"How far into the future, compared to this server's clock, a sample's timestamp may be. Later samples are rejected.")
	f.IntVar(&l.MaxMetadataLength, flagMaxMetadataLength, 1024,
		"Maximum length of a metric family name, help text or unit in metric metadata, in bytes. Longer metadata is rejected.")
}

// Validate reports limits that would reject every series or sample.
func (l *Limits) Validate() error {
	var errs []error
	positive := func(flagName string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("-%s must be positive, got %d", flagName, v))
		}
	}
	positive(flagMaxLabelNamesPerSeries, l.MaxLabelNamesPerSeries)
	positive(flagMaxLabelNameLength, l.MaxLabelNameLength)
	positive(flagMaxLabelValueLength, l.MaxLabelValueLength)
	positive(flagMaxMetadataLength, l.MaxMetadataLength)
	if l.CreationGracePeriod < 0 {
		errs = append(errs, fmt.Errorf("-%s must not be negative, got %s", flagCreationGracePeriod, l.CreationGracePeriod))
	}
	return errors.Join(errs...)
}
