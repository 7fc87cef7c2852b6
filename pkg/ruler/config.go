package ruler

import (
	"errors"
	"flag"
	"time"
)

// Config configures rule evaluation. Flag names follow Mimir's where Mimir has the same setting.
type Config struct {
	// RulePath holds the rule files the evaluation loads, <tenant>/<encoded namespace>. The app sets it
	// to <-data.dir>/rules when the flag is empty.
	RulePath string
	// PollInterval is how often the rule store is read to start, change and stop rule groups.
	PollInterval time.Duration
	// EvaluationInterval is the interval of groups that do not set their own.
	EvaluationInterval time.Duration
	// EvaluationTimeout bounds each rule's query.
	EvaluationTimeout time.Duration
	// ForOutageTolerance is how long the ruler may have been down for the 'for' state of alerts to
	// be restored from ALERTS_FOR_STATE.
	ForOutageTolerance time.Duration
	// ForGracePeriod is the least time a restored alert stays pending before it fires again.
	ForGracePeriod time.Duration
	// ResendDelay is how long a firing alert waits before it is sent again.
	ResendDelay time.Duration
}

// RegisterFlags registers the -ruler.* flags of rule evaluation.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.RulePath, "ruler.rule-path", "",
		"Directory for the rule files the ruler evaluates, written from the rule store; it deletes anything else in it. Empty: <-data.dir>/rules.")
	f.DurationVar(&c.PollInterval, "ruler.poll-interval", time.Minute,
		"How often the ruler reads the rule store to start, change and stop the evaluation of rule groups.")
	f.DurationVar(&c.EvaluationInterval, "ruler.evaluation-interval", time.Minute,
		"How often the rules of a group are evaluated when the group does not set its own interval.")
	f.DurationVar(&c.EvaluationTimeout, "ruler.evaluation-timeout", 2*time.Minute,
		"The longest one rule's query may run; a query that takes longer fails the rule's evaluation. 0 means no timeout of the ruler's own.")
	f.DurationVar(&c.ForOutageTolerance, "ruler.for-outage-tolerance", time.Hour,
		"The longest outage of the ruler after which the 'for' state of alerts is still restored from their ALERTS_FOR_STATE series.")
	f.DurationVar(&c.ForGracePeriod, "ruler.for-grace-period", 10*time.Minute,
		"The least time a restored alert waits before it fires again; alerts whose 'for' is shorter are not restored.")
	f.DurationVar(&c.ResendDelay, "ruler.resend-delay", time.Minute,
		"How long to wait before sending a firing alert to the Alertmanager again.")
}

// Validate reports settings the ruler cannot work with. An empty RulePath is allowed here because the
// app fills it in from -data.dir; New rejects it.
func (c *Config) Validate() error {
	var errs []error
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("ruler: -ruler.poll-interval must be positive"))
	}
	if c.EvaluationInterval <= 0 {
		errs = append(errs, errors.New("ruler: -ruler.evaluation-interval must be positive"))
	}
	if c.EvaluationTimeout < 0 {
		errs = append(errs, errors.New("ruler: -ruler.evaluation-timeout must not be negative"))
	}
	if c.ForOutageTolerance < 0 {
		errs = append(errs, errors.New("ruler: -ruler.for-outage-tolerance must not be negative"))
	}
	if c.ForGracePeriod < 0 {
		errs = append(errs, errors.New("ruler: -ruler.for-grace-period must not be negative"))
	}
	if c.ResendDelay < 0 {
		errs = append(errs, errors.New("ruler: -ruler.resend-delay must not be negative"))
	}
	return errors.Join(errs...)
}
