package compactor

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config configures the compactor.
type Config struct {
	// BlockRanges are the block durations compaction produces, smallest first. The smallest is the
	// ingesters' block range: blocks overlapping inside it are merged vertically.
	BlockRanges DurationList
	// CompactionInterval is how often every owned tenant gets a compaction pass.
	CompactionInterval time.Duration
	// DataDir holds blocks while they are compacted; the app sets it to <-data.dir>/compactor.
	DataDir string
	// DeletionDelay is how long a block marked for deletion stays in the bucket.
	DeletionDelay time.Duration
	// ConsistencyDelay leaves blocks uploaded more recently than this out of compaction.
	ConsistencyDelay time.Duration
	// CleanupInterval is how often deletions are carried out and bucket indexes written between compactions.
	CleanupInterval time.Duration
}

// RegisterFlags registers the compactor's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.BlockRanges = DurationList{2 * time.Hour, 12 * time.Hour, 24 * time.Hour}
	f.Var(&c.BlockRanges, "compactor.block-ranges", "Comma-separated block durations compaction produces, smallest first. The smallest must be the ingesters' -blocks-storage.tsdb.block-ranges-period; each must be a multiple of the previous one.")
	f.DurationVar(&c.CompactionInterval, "compactor.compaction-interval", time.Hour, "How often each tenant's blocks are compacted.")
	f.StringVar(&c.DataDir, "compactor.data-dir", "", "Directory holding blocks while they are compacted. Empty: <-data.dir>/compactor.")
	f.DurationVar(&c.DeletionDelay, "compactor.deletion-delay", 12*time.Hour, "How long a block marked for deletion stays in the bucket, so that queriers and store-gateways stop using it first; it is also the age after which abandoned partial uploads are deleted. 0 deletes marked blocks at once.")
	f.DurationVar(&c.ConsistencyDelay, "compactor.consistency-delay", 0, "Blocks uploaded more recently than this are not compacted yet, so that the last replica copies of a range can arrive and be merged in one go.")
	f.DurationVar(&c.CleanupInterval, "compactor.cleanup-interval", 15*time.Minute, "How often blocks past their deletion delay are deleted and bucket indexes are updated.")
}

// Validate reports a configuration the compactor cannot work with.
func (c *Config) Validate() error {
	if len(c.BlockRanges) == 0 {
		return errors.New("compactor: -compactor.block-ranges must name at least one duration")
	}
	for i, r := range c.BlockRanges {
		if r < time.Minute || r%time.Millisecond != 0 {
			return fmt.Errorf("compactor: -compactor.block-ranges: %s must be a whole number of milliseconds, at least 1m", r)
		}
		if i > 0 && (r <= c.BlockRanges[i-1] || r%c.BlockRanges[i-1] != 0) {
			return fmt.Errorf("compactor: -compactor.block-ranges: %s must be a larger multiple of %s", r, c.BlockRanges[i-1])
		}
	}
	switch {
	case c.CompactionInterval <= 0:
		return errors.New("compactor: -compactor.compaction-interval must be positive")
	case c.CleanupInterval <= 0:
		return errors.New("compactor: -compactor.cleanup-interval must be positive")
	case c.DeletionDelay < 0:
		return errors.New("compactor: -compactor.deletion-delay must not be negative")
	case c.ConsistencyDelay < 0:
		return errors.New("compactor: -compactor.consistency-delay must not be negative")
	}
	return nil
}

// rangesMillis returns the block ranges in milliseconds, as TSDB block times are.
func (c *Config) rangesMillis() []int64 {
	out := make([]int64, len(c.BlockRanges))
	for i, r := range c.BlockRanges {
		out[i] = r.Milliseconds()
	}
	return out
}

// DurationList is a list of durations written as a comma-separated flag value ("2h,12h,24h"); the config
// file gives it as a YAML sequence or such a string, as it gives every list flag.
type DurationList []time.Duration

// String formats the list as the flag takes it.
func (d *DurationList) String() string {
	parts := make([]string, len(*d))
	for i, v := range *d {
		parts[i] = v.String()
	}
	return strings.Join(parts, ",")
}

// Set parses a comma-separated list of durations, replacing the current value.
func (d *DurationList) Set(s string) error {
	var out DurationList
	for part := range strings.SplitSeq(s, ",") {
		v, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return fmt.Errorf("invalid duration %q: %w", part, err)
		}
		out = append(out, v)
	}
	*d = out
	return nil
}

// clone returns a copy, so a Config copied by value does not share its ranges.
func (d DurationList) clone() DurationList { return slices.Clone(d) }
