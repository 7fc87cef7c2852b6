package alertmanager

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/alertmanager/config"
	"github.com/prometheus/alertmanager/config/receiver"
	"github.com/prometheus/alertmanager/dispatch"
	"github.com/prometheus/alertmanager/eventrecorder"
	"github.com/prometheus/alertmanager/inhibit"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/alertmanager/timeinterval"
	"github.com/prometheus/common/model"
)

// apply makes tc the tenant's configuration, the way Alertmanager reloads its configuration file:
// everything the new configuration needs is built first, and only when that succeeded are the old
// dispatcher and inhibitor stopped and new ones started over the same alerts, silences and
// notification log. The new dispatcher re-reads every alert held, and the notification log keeps it
// from repeating notifications already sent. On error the previous configuration stays in effect.
func (i *instance) apply(tc tenantConfig) error {
	i.mtx.Lock()
	defer i.mtx.Unlock()
	if i.stopped {
		return errInstanceStopped
	}
	cfg := tc.parsed
	if err := writeTemplates(i.opts.templateDir, tc.raw.TemplateFiles); err != nil {
		return err
	}
	tmpl, err := loadTemplates(i.opts.templateDir, cfg.Templates, i.opts.externalURL)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	receivers, err := buildReceivers(cfg, tmpl, i.opts.firewall, i.logger)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	routes := dispatch.NewRoute(cfg.Route, nil)
	intervener := timeinterval.NewIntervener(timeIntervals(cfg))
	integrations := make(map[string]bool)
	for _, rcv := range receivers {
		for _, in := range rcv {
			integrations[in.Name()] = true
		}
	}

	i.stopInhibitor()
	i.dispatcher.Load().Stop()

	rec := eventrecorder.NopRecorder()
	inhibitor := inhibit.NewInhibitor(i.alerts, cfg.InhibitRules, i.logger, rec)
	// The instance is the pipeline's cluster peer: its position among the tenant's replicas sets how
	// long each notification waits for the replicas ahead of it.
	pipeline := i.pipelineBuilder.New(receivers, i.peerWait, inhibitor, i.silencer, intervener, i.marker, i.nflog, i)
	i.updateAPI(cfg, func(ctx context.Context, lset model.LabelSet) {
		inhibitor.Mutes(ctx, lset)
		i.silencer.Mutes(ctx, lset)
	})
	disp := dispatch.NewDispatcher(i.alerts, routes, pipeline, i.marker, i.notifyTimeout, dispatchMaintenanceInterval,
		dispatcherLimits{limits: i.opts.limits, tenant: i.opts.tenant}, withoutAggregationGroupLimitLogs(i.logger), rec, i.dispatcherMetrics)

	// The inhibitor loads the alerts before the dispatcher starts, so that no notification goes out
	// for an alert that is inhibited.
	done := make(chan struct{})
	go func() {
		defer close(done)
		inhibitor.Run()
	}()
	inhibitor.WaitForLoading()
	i.inhibitor, i.inhibitorDone = inhibitor, done
	go disp.Run(i.started)
	disp.WaitForLoading()
	i.dispatcher.Store(disp)
	i.integrations.Store(&integrations)
	i.applied, i.appliedAt = tc, time.Now()
	return nil
}

// appliedConfig returns the configuration in effect and when it was applied.
func (i *instance) appliedConfig() (tenantConfig, time.Time) {
	i.mtx.Lock()
	defer i.mtx.Unlock()
	return i.applied, i.appliedAt
}

// buildReceivers returns the integrations of every receiver that a route uses, their connections
// checked by fw; receivers no route names are not built, as in Alertmanager.
func buildReceivers(cfg *config.Config, tmpl *template.Template, fw *receiverFirewall, logger *slog.Logger) (map[string][]notify.Integration, error) {
	used := make(map[string]bool)
	dispatch.NewRoute(cfg.Route, nil).Walk(func(r *dispatch.Route) {
		used[r.RouteOpts.Receiver] = true
	})
	receivers := make(map[string][]notify.Integration, len(used))
	for _, rcv := range cfg.Receivers {
		if !used[rcv.Name] {
			continue
		}
		if err := fw.checkReceiver(rcv); err != nil {
			return nil, fmt.Errorf("receiver %q: %w", rcv.Name, err)
		}
		integrations, err := receiver.BuildReceiverIntegrations(rcv, tmpl, logger, fw.httpOptions()...)
		if err != nil {
			return nil, fmt.Errorf("receiver %q: %w", rcv.Name, err)
		}
		receivers[rcv.Name] = integrations
	}
	return receivers, nil
}

func timeIntervals(cfg *config.Config) map[string][]timeinterval.TimeInterval {
	m := make(map[string][]timeinterval.TimeInterval, len(cfg.MuteTimeIntervals)+len(cfg.TimeIntervals))
	for _, ti := range cfg.MuteTimeIntervals {
		m[ti.Name] = ti.TimeIntervals
	}
	for _, ti := range cfg.TimeIntervals {
		m[ti.Name] = ti.TimeIntervals
	}
	return m
}
