// Command loadgen drives a Strata cluster (or any Prometheus remote-write receiver and query API)
// with realistic load, and checks what it wrote:
//
//	loadgen write  -url http://127.0.0.1:8080/api/v1/push -tenants 4 -series 10000 -interval 15s -state state.json
//	loadgen query  -query-url http://127.0.0.1:8080/prometheus -compare-url http://127.0.0.1:9090
//	loadgen verify -query-url http://127.0.0.1:8080/prometheus -state state.json
//	loadgen blocks -dir blocks/ -series 3000 -from 7d -to 3h -block-range 24h -strata-tenant anonymous
//
// Each mode prints one summary and, with -json, writes it as JSON.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: loadgen <write|query|verify|blocks> [flags]; loadgen <mode> -h lists a mode's flags`

// run executes one mode and returns the exit code: 1 when verify finds missing samples or
// query finds mismatches, 2 for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		_, _ = fmt.Fprintln(stderr, usage)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "loadgen")
	mode := args[0]
	fs := flag.NewFlagSet("loadgen "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonPath := fs.String("json", "", "also write the summary as JSON to this file")

	var (
		validate func() error
		execute  func() (*summary, error)
	)
	switch mode {
	case "write":
		var cfg writeConfig
		cfg.RegisterFlags(fs)
		validate = cfg.Validate
		execute = func() (*summary, error) {
			ws, cpu, err := runWrite(ctx, cfg, logger)
			return &summary{Write: ws, CPU: cpu}, err
		}
	case "query":
		var cfg queryConfig
		cfg.RegisterFlags(fs)
		validate = cfg.Validate
		execute = func() (*summary, error) {
			meter := startCPUMeter()
			qs, err := runQueries(ctx, cfg)
			return &summary{Query: qs, CPU: meter.stop()}, err
		}
	case "verify":
		var cfg verifyConfig
		cfg.RegisterFlags(fs)
		validate = cfg.Validate
		execute = func() (*summary, error) {
			meter := startCPUMeter()
			vs, err := runVerify(ctx, cfg)
			return &summary{Verify: vs, CPU: meter.stop()}, err
		}
	case "blocks":
		var cfg blocksConfig
		cfg.RegisterFlags(fs)
		validate = cfg.Validate
		execute = func() (*summary, error) {
			meter := startCPUMeter()
			bs, err := runBlocks(ctx, cfg, logger)
			return &summary{Blocks: bs, CPU: meter.stop()}, err
		}
	default:
		_, _ = fmt.Fprintf(stderr, "unknown mode %q\n%s\n", mode, usage)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := validate(); err != nil {
		_, _ = fmt.Fprintln(stderr, err)
		return 2
	}

	start := time.Now()
	s, err := execute()
	code := 0
	if err != nil {
		logger.Error("run failed", "mode", mode, "err", err)
		code = 1
	}
	if s == nil || (s.Write == nil && s.Query == nil && s.Verify == nil && s.Blocks == nil) {
		return 1
	}
	s.Mode = mode
	s.WallSeconds = time.Since(start).Seconds()
	s.print(stdout)
	if *jsonPath != "" {
		if err := s.writeJSON(*jsonPath); err != nil {
			logger.Error("write summary", "err", err)
			code = 1
		}
	}
	return code
}

// tenantConfig says how requests name their tenant.
type tenantConfig struct {
	Header       string
	AuthDisabled bool
}

// RegisterFlags registers the tenant header flags.
func (c *tenantConfig) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Header, "tenant-header", "X-Scope-OrgID", "HTTP header carrying the tenant ID; empty sends none (Prometheus, VictoriaMetrics single-node)")
	f.BoolVar(&c.AuthDisabled, "auth-disabled", false, "send no tenant header, as for a receiver without multi-tenancy")
}

func (c *tenantConfig) headerName() string {
	if c.AuthDisabled {
		return ""
	}
	return c.Header
}

// urlList is a repeatable flag of URLs that also takes comma-separated lists; the first use
// replaces the default.
type urlList struct {
	urls []string
	set  bool
}

func (u *urlList) String() string { return strings.Join(u.urls, ",") }

func (u *urlList) Set(v string) error {
	if !u.set {
		u.urls, u.set = nil, true
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if err := checkURL(s); err != nil {
			return err
		}
		u.urls = append(u.urls, s)
	}
	if len(u.urls) == 0 {
		return errors.New("no URL given")
	}
	return nil
}

func checkURL(s string) error {
	parsed, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", s, err)
	}
	if (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return fmt.Errorf("invalid URL %q: want http(s)://host[:port]/path", s)
	}
	return nil
}
