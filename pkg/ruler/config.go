package ruler

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
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
	// ForOutageTolerance is how long the ruler may have been down for the 'for' state of alerts to
	// be restored from ALERTS_FOR_STATE.
	ForOutageTolerance time.Duration
	// ForGracePeriod is the least time a restored alert stays pending before it fires again.
	ForGracePeriod time.Duration
	// ResendDelay is how long a firing alert waits before it is sent again.
	ResendDelay time.Duration
	// RingCheckPeriod is how often the ruler looks for changes of the ruler ring, which move groups.
	RingCheckPeriod time.Duration

	// AlertmanagerURL lists the Alertmanagers alerts go to, comma-separated; empty sends none.
	AlertmanagerURL string
	// AlertmanagerClient is the TLS and basic auth of the requests to AlertmanagerURL.
	AlertmanagerClient AlertmanagerClientConfig
	// NotificationQueueCapacity bounds each tenant's alerts waiting to be sent.
	NotificationQueueCapacity int
	// NotificationTimeout bounds one send of alerts to an Alertmanager.
	NotificationTimeout time.Duration
	// QueryFrontendAddress, if set, is the base URL of the query-frontend that evaluates the rules'
	// queries; empty evaluates them in process.
	QueryFrontendAddress string
	// ExternalURL is where users reach Strata: the base of the alerts' generator URLs and the
	// $externalURL of templates.
	ExternalURL string
}

// RegisterFlags registers the -ruler.* flags of rule evaluation.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.RulePath, "ruler.rule-path", "",
		"Directory for the rule files the ruler evaluates, written from the rule store; it deletes anything else in it. Empty: <-data.dir>/rules.")
	f.DurationVar(&c.PollInterval, "ruler.poll-interval", time.Minute,
		"How often the ruler reads the rule store to start, change and stop the evaluation of rule groups.")
	f.DurationVar(&c.EvaluationInterval, "ruler.evaluation-interval", time.Minute,
		"How often the rules of a group are evaluated when the group does not set its own interval.")
	f.DurationVar(&c.ForOutageTolerance, "ruler.for-outage-tolerance", time.Hour,
		"The longest outage of the ruler after which the 'for' state of alerts is still restored from their ALERTS_FOR_STATE series.")
	f.DurationVar(&c.ForGracePeriod, "ruler.for-grace-period", 10*time.Minute,
		"The least time a restored alert waits before it fires again; alerts whose 'for' is shorter are not restored.")
	f.DurationVar(&c.ResendDelay, "ruler.resend-delay", time.Minute,
		"How long to wait before sending a firing alert to the Alertmanager again.")
	f.DurationVar(&c.RingCheckPeriod, "ruler.ring-check-period", 5*time.Second,
		"How often the ruler checks the ruler ring for changes, which move rule groups between rulers; a change syncs at once instead of at the next poll.")
	f.StringVar(&c.AlertmanagerURL, "ruler.alertmanager-url", "",
		"Comma-separated URLs of the Alertmanagers the ruler sends alerts to, with the path of their API (Strata's: http://host:port/alertmanager) and basic-auth credentials if needed; each request carries the tenant in X-Scope-OrgID. Empty: the Alertmanager of this process if it runs one, else alerts are not sent.")
	c.AlertmanagerClient.RegisterFlags(f)
	f.IntVar(&c.NotificationQueueCapacity, "ruler.notification-queue-capacity", 10000,
		"Alerts of one tenant waiting to be sent; beyond it the oldest are dropped.")
	f.DurationVar(&c.NotificationTimeout, "ruler.notification-timeout", 10*time.Second,
		"The longest one send of alerts to an Alertmanager may take.")
	f.StringVar(&c.QueryFrontendAddress, "ruler.query-frontend.address", "",
		"HTTP(S) URL of the query-frontend that evaluates the rules' queries (http://host:port), with its queue, fairness and limits. Empty: the ruler evaluates them with its own querier code.")
	f.StringVar(&c.ExternalURL, "ruler.external.url", "",
		"The URL users reach Strata at: the base of the generator URL of alerts and the $externalURL of templates.")
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
	if c.ForOutageTolerance < 0 {
		errs = append(errs, errors.New("ruler: -ruler.for-outage-tolerance must not be negative"))
	}
	if c.ForGracePeriod < 0 {
		errs = append(errs, errors.New("ruler: -ruler.for-grace-period must not be negative"))
	}
	if c.RingCheckPeriod <= 0 {
		errs = append(errs, errors.New("ruler: -ruler.ring-check-period must be positive"))
	}
	if c.NotificationQueueCapacity <= 0 {
		errs = append(errs, errors.New("ruler: -ruler.notification-queue-capacity must be positive"))
	}
	if c.NotificationTimeout <= 0 {
		errs = append(errs, errors.New("ruler: -ruler.notification-timeout must be positive"))
	}
	if _, err := url.Parse(c.ExternalURL); err != nil {
		errs = append(errs, fmt.Errorf("ruler: -ruler.external.url: %w", err))
	}
	if c.QueryFrontendAddress != "" {
		if u, err := url.Parse(c.QueryFrontendAddress); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("ruler: -ruler.query-frontend.address %q is not an http(s) URL with a host", c.QueryFrontendAddress))
		}
	}
	if urls, err := parseAlertmanagerURLs(c.AlertmanagerURL); err != nil {
		errs = append(errs, fmt.Errorf("ruler: %w", err))
	} else if err := c.AlertmanagerClient.validate(urls); err != nil {
		errs = append(errs, err)
	}
	if c.ResendDelay < 0 {
		errs = append(errs, errors.New("ruler: -ruler.resend-delay must not be negative"))
	}
	return errors.Join(errs...)
}
