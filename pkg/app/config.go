package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/strata-metrics/strata/pkg/alertmanager"
	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
	"github.com/strata-metrics/strata/pkg/auth"
	"github.com/strata-metrics/strata/pkg/compactor"
	"github.com/strata-metrics/strata/pkg/distributor"
	"github.com/strata-metrics/strata/pkg/frontend"
	"github.com/strata-metrics/strata/pkg/frontend/querymiddleware"
	"github.com/strata-metrics/strata/pkg/frontend/querysharding"
	"github.com/strata-metrics/strata/pkg/grpcclient"
	"github.com/strata-metrics/strata/pkg/ingester"
	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/querier/worker"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/ring/kv/etcd"
	"github.com/strata-metrics/strata/pkg/ring/kv/memberlist"
	"github.com/strata-metrics/strata/pkg/ring/kv/multi"
	"github.com/strata-metrics/strata/pkg/ruler"
	"github.com/strata-metrics/strata/pkg/ruler/rulestore"
	"github.com/strata-metrics/strata/pkg/runtimeconfig"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/storegateway"
	"github.com/strata-metrics/strata/pkg/validation"
)

// Config is the root configuration of a Strata process.
type Config struct {
	Target              string
	DataDir             string
	MultitenancyEnabled bool
	// TenantFederationEnabled lets a read name several tenants in X-Scope-OrgID ("a|b").
	TenantFederationEnabled bool
	LogLevel                string

	Server         ServerConfig
	Auth           auth.Config
	Distributor    distributor.Config
	Ingester       ingester.Config
	IngesterClient grpcclient.Config
	// StoreGatewayClient configures the queriers' connections to store-gateways.
	StoreGatewayClient grpcclient.Config
	Querier            querier.Config
	// QuerierWorker connects queriers to the query-frontends they pull queries from.
	QuerierWorker worker.Config
	Frontend      frontend.Config
	// QueryMiddleware splits and caches range queries in the query-frontend; QuerySharding shards them.
	QueryMiddleware querymiddleware.Config
	QuerySharding   querysharding.Config
	Limits          validation.Limits
	RuntimeConfig   runtimeconfig.Config
	Ring            ring.Config
	Lifecycler      ring.LifecyclerConfig
	RingStore       string
	Bucket          bucket.Config
	Compactor       compactor.Config
	StoreGateway    storegateway.Config
	// StoreGatewayLifecycler registers each store-gateway in the store-gateway ring, which shards blocks.
	StoreGatewayLifecycler ring.LifecyclerConfig
	// CompactorLifecycler registers each compactor in the compactor ring, which shards tenants.
	CompactorLifecycler ring.LifecyclerConfig
	Memberlist          memberlist.Config
	Etcd                etcd.Config
	Multi               multi.Config
	// DistributorLifecycler registers each distributor in a ring of its own (/distributor/ring).
	DistributorLifecycler ring.LifecyclerConfig
	Ruler                 ruler.Config
	RulerStorage          rulestore.Config
	// RulerLifecycler registers each ruler in the ruler ring, which shards rule groups.
	RulerLifecycler ring.LifecyclerConfig
	// RulerClient configures the rulers' connections to each other (/api/v1/rules asks them all).
	RulerClient         grpcclient.Config
	Alertmanager        alertmanager.Config
	AlertmanagerStorage alertstore.Config
	// AlertmanagerLifecycler registers each Alertmanager in the Alertmanager ring, which places tenants.
	AlertmanagerLifecycler ring.LifecyclerConfig
	// AlertmanagerClient configures the Alertmanagers' connections to each other (state replication,
	// forwarded API calls).
	AlertmanagerClient   grpcclient.Config
	ZoneAwarenessEnabled bool

	// ConfigFile and ExpandEnv are read before the other flags, as they say where those come from.
	ConfigFile string
	ExpandEnv  bool
	// PrintVersion asks for the build information instead of a run; nothing else is read or checked then.
	PrintVersion bool
	// Verify asks for the configuration to be checked instead of run (cmd/strata reads it with VerifyRequested).
	Verify bool
}

// RegisterFlags registers every flag of every component.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.ConfigFile, "config.file", "", "YAML file to load the configuration from; flags given on the command line override it.")
	f.BoolVar(&c.ExpandEnv, "config.expand-env", false, "Replace ${VAR} and ${VAR:default} in the config file with environment variables.")
	f.BoolVar(&c.PrintVersion, "version", false, "Print the version, revision, branch and build date of this binary and exit.")
	f.BoolVar(&c.Verify, "config.verify", false, "Check the flags and the config file as a start would, print every problem found and exit: 0 when the configuration is valid, 1 otherwise. Nothing is opened, listened on or written.")
	f.StringVar(&c.Target, "target", TargetAll, "Comma-separated components to run: "+strings.Join(targetNames(), ", ")+".")
	f.StringVar(&c.DataDir, "data.dir", "./data", "Directory for local state: TSDBs and WALs of the ingester.")
	f.BoolVar(&c.MultitenancyEnabled, "auth.multitenancy-enabled", true, "Require the X-Scope-OrgID header on every data request. If false, every request belongs to tenant \"anonymous\".")
	f.BoolVar(&c.TenantFederationEnabled, "tenant-federation.enabled", false, "Let queries read several tenants at once: X-Scope-OrgID \"team-a|team-b\" answers the union of their series, each labelled __tenant_id__, each tenant within its own limits. Writes always name one tenant.")
	f.StringVar(&c.LogLevel, "log.level", "info", "Log level: debug, info, warn, error.")
	f.StringVar(&c.RingStore, "ingester.ring.store", "", "Backend of the rings: memberlist, etcd, multi (two of them, to migrate), or inmemory (one process only). Empty: inmemory with -target=all, memberlist otherwise. The distributor ring uses the same backend.")
	f.BoolVar(&c.ZoneAwarenessEnabled, "distributor.zone-awareness-enabled", false, "Place the replicas of each series in distinct availability zones (-ingester.ring.instance-availability-zone), so a whole zone can be lost.")

	c.Server.RegisterFlags(f)
	c.Auth.RegisterFlags(f)
	c.Distributor.RegisterFlags(f)
	c.Ingester.RegisterFlags(f)
	c.IngesterClient.RegisterFlagsWithPrefix("ingester.client", "ingester", f)
	c.StoreGatewayClient.RegisterFlagsWithPrefix("store-gateway.client", "store-gateway", f)
	c.Querier.RegisterFlags(f)
	c.QuerierWorker.RegisterFlags(f)
	c.Frontend.RegisterFlags(f)
	c.QueryMiddleware.RegisterFlags(f)
	c.QuerySharding.RegisterFlags(f)
	c.Limits.RegisterFlags(f)
	c.RuntimeConfig.RegisterFlags(f)
	c.Ring.RegisterFlags(f)
	c.Lifecycler.RegisterFlagsWithPrefix("ingester.ring.", f)
	f.Lookup("ingester.ring.unregister-on-shutdown").Usage += " Unless set, true with a replication factor of 1 and false otherwise, so that a restarting ingester keeps its place and its series do not move."
	c.Bucket.RegisterFlags(f)
	c.Compactor.RegisterFlags(f)
	c.CompactorLifecycler.RegisterFlagsWithPrefix("compactor.ring.", f)
	c.StoreGateway.RegisterFlags(f)
	c.StoreGatewayLifecycler.RegisterFlagsWithPrefix("store-gateway.sharding-ring.", f)
	c.Memberlist.RegisterFlags(f)
	c.Etcd.RegisterFlagsWithPrefix("ingester.ring.", f)
	c.Multi.RegisterFlagsWithPrefix("ingester.ring.", f)
	c.DistributorLifecycler.RegisterFlagsWithPrefix("distributor.ring.", f)
	c.Ruler.RegisterFlags(f)
	c.RulerStorage.RegisterFlags(f)
	c.RulerLifecycler.RegisterFlagsWithPrefix("ruler.ring.", f)
	c.RulerClient.RegisterFlagsWithPrefix("ruler.client", "ruler", f)
	c.Alertmanager.RegisterFlags(f)
	c.AlertmanagerStorage.RegisterFlags(f)
	c.AlertmanagerLifecycler.RegisterFlagsWithPrefix("alertmanager.sharding-ring.", f)
	c.AlertmanagerClient.RegisterFlagsWithPrefix("alertmanager.alertmanager-client", "Alertmanager", f)
}

// Ring backends.
const (
	storeInmemory   = "inmemory"
	storeMemberlist = "memberlist"
	storeEtcd       = "etcd"
	storeMulti      = "multi"
)

// Validate checks the whole configuration and fills in derived values.
func (c *Config) Validate() error {
	targets, err := parseTargets(c.Target)
	if err != nil {
		return err
	}
	if c.RingStore == "" {
		c.RingStore = storeMemberlist
		if len(targets) == 1 && targets[0] == TargetAll {
			c.RingStore = storeInmemory
		}
	}
	if err := validStore(c.RingStore, "-ingester.ring.store"); err != nil {
		return err
	}
	if c.RingStore == storeMulti {
		if err := validStore(c.Multi.Primary, "-ingester.ring.multi.primary"); err != nil {
			return err
		}
		if err := validStore(c.Multi.Secondary, "-ingester.ring.multi.secondary"); err != nil {
			return err
		}
	}
	if c.Distributor.ReplicationFactor == 0 {
		// The in-process ring holds one ingester, so one copy is all it can hold.
		c.Distributor.ReplicationFactor = 1
		if c.RingStore != storeInmemory {
			c.Distributor.ReplicationFactor = 3
		}
	}
	if c.Bucket.Backend == bucket.BackendFilesystem && c.Bucket.Filesystem.Dir == "" {
		c.Bucket.Filesystem.Dir = filepath.Join(c.DataDir, "bucket")
	}
	if c.Compactor.DataDir == "" {
		c.Compactor.DataDir = filepath.Join(c.DataDir, "compactor")
	}
	if c.StoreGateway.SyncDir == "" {
		c.StoreGateway.SyncDir = filepath.Join(c.DataDir, "tsdb-sync")
	}
	c.Ring.ReplicationFactor = c.Distributor.ReplicationFactor
	c.Ring.ZoneAwarenessEnabled = c.ZoneAwarenessEnabled
	c.Lifecycler.AutoForgetAfter = c.Ring.AutoForgetAfter()
	c.DistributorLifecycler.AutoForgetAfter = c.Ring.AutoForgetAfter()
	c.CompactorLifecycler.AutoForgetAfter = c.Ring.AutoForgetAfter()
	c.StoreGatewayLifecycler.AutoForgetAfter = c.Ring.AutoForgetAfter()
	c.RulerLifecycler.AutoForgetAfter = c.Ring.AutoForgetAfter()
	c.AlertmanagerLifecycler.AutoForgetAfter = c.Ring.AutoForgetAfter()
	// Every component is checked, so that one run reports all that is wrong.
	var errs []error
	if c.ZoneAwarenessEnabled && c.Lifecycler.Zone == "" && slices.ContainsFunc(targets, func(t string) bool { return t == TargetIngester || t == TargetAll }) {
		errs = append(errs, errors.New("-distributor.zone-awareness-enabled needs -ingester.ring.instance-availability-zone on every ingester"))
	}
	for _, v := range []interface{ Validate() error }{&c.Bucket, &c.Compactor, &c.StoreGateway, &c.Server, &c.Auth, &c.Distributor, &c.Ingester, &c.IngesterClient, &c.StoreGatewayClient, &c.Querier, &c.QuerierWorker, &c.Frontend, &c.QueryMiddleware, &c.QuerySharding, &c.Limits, &c.RuntimeConfig, &c.Ring, &c.Lifecycler, &c.DistributorLifecycler, &c.CompactorLifecycler, &c.StoreGatewayLifecycler, &c.Ruler, &c.RulerStorage, &c.RulerLifecycler, &c.RulerClient, &c.Alertmanager, &c.AlertmanagerStorage, &c.AlertmanagerLifecycler, &c.AlertmanagerClient} {
		if err := v.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.validateAuth(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateInternalTLS(targets); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseLogLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// LoadConfig builds the configuration from the command line: defaults, then the YAML file named by
// -config.file, then the flags given on the command line.
func LoadConfig(args []string, stderr io.Writer) (*Config, *flag.FlagSet, error) {
	cfg := &Config{}
	f := flag.NewFlagSet("strata", flag.ContinueOnError)
	f.SetOutput(stderr)
	cfg.RegisterFlags(f)

	// A first pass finds -config.file and -config.expand-env; the file is applied before the real parse so
	// that command-line flags win.
	pre := flag.NewFlagSet("strata", flag.ContinueOnError)
	pre.SetOutput(io.Discard)
	file := pre.String("config.file", "", "")
	expand := pre.Bool("config.expand-env", false, "")
	printVersion := pre.Bool("version", false, "")
	pre.Usage = func() {}
	_ = pre.Parse(onlyFlags(args, "config.file", "config.expand-env", "version"))
	if *printVersion {
		// -version works whatever else the command line or the config file says.
		cfg.PrintVersion = true
		return cfg, f, nil
	}

	// Every problem is collected, not just the first, so that one run (-config.verify) lists them all.
	var problems []error
	if *file != "" {
		data, err := os.ReadFile(*file)
		if err != nil {
			problems = append(problems, fmt.Errorf("read config file: %w", err))
		} else {
			if *expand {
				data = expandEnv(data)
			}
			if err := applyConfigFile(f, data, *file); err != nil {
				problems = append(problems, err)
			}
		}
	}
	if err := parseAllFlags(f, args, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		problems = append(problems, err)
	}
	explicit := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { explicit[fl.Name] = true })
	if err := cfg.Validate(); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return nil, nil, errors.Join(problems...)
	}
	if cfg.RingStore == storeInmemory {
		// Only this process reads the in-process ring: loopback is the address that always works.
		if !explicit["ingester.ring.instance-addr"] {
			cfg.Lifecycler.Addr = "127.0.0.1"
		}
		if !explicit["distributor.ring.instance-addr"] {
			cfg.DistributorLifecycler.Addr = "127.0.0.1"
		}
		if !explicit["compactor.ring.instance-addr"] {
			cfg.CompactorLifecycler.Addr = "127.0.0.1"
		}
		if !explicit["store-gateway.sharding-ring.instance-addr"] {
			cfg.StoreGatewayLifecycler.Addr = "127.0.0.1"
		}
		if !explicit["ruler.ring.instance-addr"] {
			cfg.RulerLifecycler.Addr = "127.0.0.1"
		}
		if !explicit["alertmanager.sharding-ring.instance-addr"] {
			cfg.AlertmanagerLifecycler.Addr = "127.0.0.1"
		}
	}
	if err := cfg.deriveHeartbeatPeriods(explicit); err != nil {
		return nil, nil, err
	}
	if !explicit["ingester.ring.unregister-on-shutdown"] {
		// With replicas, a restarting ingester keeps its place so its series do not move. The
		// configuration reference says so (derivedDefaults).
		cfg.Lifecycler.UnregisterOnShutdown = cfg.Distributor.ReplicationFactor == 1
	}
	if explicit["ingester.ring.instance-id"] {
		// One name per process, unless each ring is given its own.
		if !explicit["distributor.ring.instance-id"] {
			cfg.DistributorLifecycler.ID = cfg.Lifecycler.ID
		}
		if !explicit["compactor.ring.instance-id"] {
			cfg.CompactorLifecycler.ID = cfg.Lifecycler.ID
		}
		if !explicit["store-gateway.sharding-ring.instance-id"] {
			cfg.StoreGatewayLifecycler.ID = cfg.Lifecycler.ID
		}
		if !explicit["ruler.ring.instance-id"] {
			cfg.RulerLifecycler.ID = cfg.Lifecycler.ID
		}
		if !explicit["alertmanager.sharding-ring.instance-id"] {
			cfg.AlertmanagerLifecycler.ID = cfg.Lifecycler.ID
		}
	}
	return cfg, f, nil
}

// deriveHeartbeatPeriods keeps every ring's instances alive in the eyes of the others: a heartbeat
// period that is not shorter than -ring.heartbeat-timeout would make an instance flap between healthy and
// dead (a ruler would drop its groups, an Alertmanager its tenants). A period left at its default is
// brought down to a quarter of the timeout; one set on purpose is an error.
func (c *Config) deriveHeartbeatPeriods(explicit map[string]bool) error {
	timeout := c.Ring.HeartbeatTimeout
	for prefix, lc := range map[string]*ring.LifecyclerConfig{
		"ingester.ring.": &c.Lifecycler, "distributor.ring.": &c.DistributorLifecycler,
		"compactor.ring.": &c.CompactorLifecycler, "store-gateway.sharding-ring.": &c.StoreGatewayLifecycler,
		"ruler.ring.": &c.RulerLifecycler, "alertmanager.sharding-ring.": &c.AlertmanagerLifecycler,
	} {
		if lc.HeartbeatPeriod < timeout {
			continue
		}
		if explicit[prefix+"heartbeat-period"] {
			return fmt.Errorf("-%sheartbeat-period %s must be shorter than -ring.heartbeat-timeout %s, or the instance counts as dead between heartbeats", prefix, lc.HeartbeatPeriod, timeout)
		}
		lc.HeartbeatPeriod = timeout / 4
	}
	return nil
}

// onlyFlags keeps the named flags (and their values) from args.
func onlyFlags(args []string, names ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") || !slices.Contains(names, name) {
			continue
		}
		out = append(out, args[i])
		isBool := name == "config.expand-env" || name == "version" || name == "config.verify"
		if !hasValue && !isBool && i+1 < len(args) {
			out = append(out, args[i+1])
			i++
		}
	}
	return out
}

var errUnknownTarget = errors.New("unknown target")

func validStore(name, flagName string) error {
	switch name {
	case storeInmemory, storeMemberlist, storeEtcd, storeMulti:
		return nil
	}
	return fmt.Errorf("unknown %s %q: choose memberlist, etcd, multi or inmemory", flagName, name)
}
