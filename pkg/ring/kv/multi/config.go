package multi

import (
	"flag"
	"fmt"
	"time"
)

// Config names the two stores and says whether writes to the primary are copied to the secondary.
type Config struct {
	// Primary is the store that serves reads and takes writes first.
	Primary string
	// Secondary is the store that receives copies of the primary's writes when mirroring is enabled.
	Secondary string
	// MirrorEnabled copies every value written to the primary to the secondary.
	MirrorEnabled bool
	// MirrorTimeout bounds how long a write waits for its copy to the secondary.
	MirrorTimeout time.Duration

	// flagPrefix is what RegisterFlagsWithPrefix was given, so Validate can name the flag to change.
	flagPrefix string
}

// RegisterFlagsWithPrefix registers the flags under <prefix>multi., e.g. -ingester.ring.multi.primary for
// the prefix "ingester.ring.".
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	c.flagPrefix = prefix
	p := prefix + "multi."
	f.StringVar(&c.Primary, p+"primary", "", "Store that serves reads and takes writes first, when the store is multi (e.g. etcd).")
	f.StringVar(&c.Secondary, p+"secondary", "", "Store that receives copies of the primary's writes while mirroring is enabled (e.g. memberlist).")
	f.BoolVar(&c.MirrorEnabled, p+"mirror-enabled", false, "Copy every value written to the primary store to the secondary store.")
	f.DurationVar(&c.MirrorTimeout, p+"mirror-timeout", 2*time.Second, "How long a write waits for its copy to the secondary store; a copy that fails or times out is logged and counted, and does not fail the write.")
}

// Validate reports a configuration the client cannot work with. The app calls it only when the multi
// store is in use, and checks itself that both names are stores it knows.
func (c *Config) Validate() error {
	flagName := func(name string) string { return "-" + c.flagPrefix + "multi." + name }
	if c.Primary == "" {
		return fmt.Errorf("multi: no primary store configured (%s)", flagName("primary"))
	}
	if c.Secondary == "" {
		return fmt.Errorf("multi: no secondary store configured (%s)", flagName("secondary"))
	}
	if c.Primary == c.Secondary {
		return fmt.Errorf("multi: primary and secondary are both %q; they must be different stores (%s, %s)",
			c.Primary, flagName("primary"), flagName("secondary"))
	}
	for _, name := range []string{c.Primary, c.Secondary} {
		if name == storeName {
			return fmt.Errorf("multi: %q cannot contain itself (%s, %s)", storeName, flagName("primary"), flagName("secondary"))
		}
	}
	if c.MirrorTimeout <= 0 {
		return fmt.Errorf("multi: mirror timeout must be positive, is %s (%s)", c.MirrorTimeout, flagName("mirror-timeout"))
	}
	return nil
}

// storeName is the name of this store itself among the ring store names.
const storeName = "multi"
