package validation

import (
	"errors"
	"flag"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Limits bound what one tenant may write and read. The flags set every tenant's defaults; the runtime
// configuration file overrides any subset of them per tenant (see Overrides). Lengths are in bytes.
//
// Each field's yaml tag is its key in the limits block and in a tenant's overrides (Mimir's name where
// Mimir has the limit), and its flag tag the flag that sets its default. Both are part of the API: error
// messages and docs/errors.md quote them.
type Limits struct {
	// MaxLabelNamesPerSeries is the most labels a series may have, __name__ included.
	MaxLabelNamesPerSeries int `yaml:"max_label_names_per_series" flag:"validation.max-label-names-per-series"`
	// MaxLabelNameLength is the longest label name.
	MaxLabelNameLength int `yaml:"max_label_name_length" flag:"validation.max-length-label-name"`
	// MaxLabelValueLength is the longest label value, the metric name included.
	MaxLabelValueLength int `yaml:"max_label_value_length" flag:"validation.max-length-label-value"`
	// CreationGracePeriod is how far past the receiver's clock a sample may be. A small allowance absorbs
	// clock skew; more would let a bad clock write data that hides the real "latest" sample.
	CreationGracePeriod model.Duration `yaml:"creation_grace_period" flag:"validation.create-grace-period"`
	// MaxMetadataLength is the longest metric family name, help or unit in metric metadata.
	MaxMetadataLength int `yaml:"max_metadata_length" flag:"validation.max-metadata-length"`

	// AcceptHASamples turns on HA deduplication for the tenant: of the replicas of one cluster, only the
	// elected one's samples are kept (needs -distributor.ha-tracker.enable).
	AcceptHASamples bool `yaml:"accept_ha_samples" flag:"distributor.ha-tracker.enable-for-all-users"`
	// HAClusterLabel and HAReplicaLabel name the labels that identify an HA pair's cluster and replica.
	HAClusterLabel string `yaml:"ha_cluster_label" flag:"distributor.ha-tracker.cluster"`
	HAReplicaLabel string `yaml:"ha_replica_label" flag:"distributor.ha-tracker.replica"`
	// HAMaxClusters bounds the HA clusters the tracker keeps for the tenant; 0 is no limit.
	HAMaxClusters int `yaml:"ha_max_clusters" flag:"distributor.ha-tracker.max-clusters"`

	// IngestionRate is the samples per second a tenant may push, across all distributors; each enforces
	// its share (divided by the healthy distributors). 0 is no limit.
	IngestionRate float64 `yaml:"ingestion_rate" flag:"distributor.ingestion-rate-limit"`
	// IngestionBurstSize is how many samples a tenant may push at once above the rate, per distributor.
	IngestionBurstSize int `yaml:"ingestion_burst_size" flag:"distributor.ingestion-burst-size"`
	// RequestRate is the push requests per second a tenant may send, shared out as IngestionRate. 0 is no limit.
	RequestRate float64 `yaml:"request_rate" flag:"distributor.request-rate-limit"`
	// RequestBurstSize is how many requests a tenant may send at once above the rate, per distributor.
	RequestBurstSize int `yaml:"request_burst_size" flag:"distributor.request-burst-size"`

	// OTelMetricSuffixesEnabled adds the unit and type suffixes (_seconds, _total...) to metric names
	// translated from OTLP, as Prometheus' OTLP receiver does by default.
	OTelMetricSuffixesEnabled bool `yaml:"otel_metric_suffixes_enabled" flag:"distributor.otel-metric-suffixes-enabled"`
	// PromoteOTelResourceAttributes are the OTLP resource attributes copied as labels onto every series
	// of their resource; all of them stay in target_info.
	PromoteOTelResourceAttributes CSVList `yaml:"promote_otel_resource_attributes" flag:"distributor.otel-promote-resource-attributes"`
	// OTelKeepIdentifyingResourceAttributes keeps service.name, service.namespace and
	// service.instance.id in target_info besides turning them into job and instance.
	OTelKeepIdentifyingResourceAttributes bool `yaml:"otel_keep_identifying_resource_attributes" flag:"distributor.otel-keep-identifying-resource-attributes"`
	// OTelConvertHistogramsToNHCB stores OTLP explicit-bucket histograms as native histograms with
	// custom buckets instead of a classic histogram's _bucket, _sum and _count series.
	OTelConvertHistogramsToNHCB bool `yaml:"otel_convert_histograms_to_nhcb" flag:"distributor.otel-convert-histograms-to-nhcb"`
	// OTelPromoteScopeMetadata adds the instrumentation scope's name, version, schema URL and attributes
	// as otel_scope_* labels.
	OTelPromoteScopeMetadata bool `yaml:"otel_promote_scope_metadata" flag:"distributor.otel-promote-scope-metadata"`
	// OTelNativeDeltaIngestion stores OTLP delta sums and histograms as they are, each sample the change
	// over its interval, instead of refusing them.
	OTelNativeDeltaIngestion bool `yaml:"otel_native_delta_ingestion" flag:"distributor.otel-native-delta-ingestion"`
	// OTelCreatedTimestampZeroIngestionEnabled writes an OTLP cumulative point's start time as a zero
	// sample before its first point, as remote write 2.0's start timestamps are.
	OTelCreatedTimestampZeroIngestionEnabled bool `yaml:"otel_created_timestamp_zero_ingestion_enabled" flag:"distributor.otel-created-timestamp-zero-ingestion-enabled"`

	// MaxGlobalSeriesPerUser bounds the tenant's in-memory series across the cluster; each ingester
	// enforces its share (see LocalLimit). 0 is no limit.
	MaxGlobalSeriesPerUser int `yaml:"max_global_series_per_user" flag:"ingester.max-global-series-per-user"`
	// MaxGlobalSeriesPerMetric bounds the tenant's in-memory series of one metric name, as above.
	MaxGlobalSeriesPerMetric int `yaml:"max_global_series_per_metric" flag:"ingester.max-global-series-per-metric"`
	// MaxGlobalExemplarsPerUser is the size of the tenant's exemplar buffer across the cluster, shared out
	// as the series limit; 0 stores no exemplars.
	MaxGlobalExemplarsPerUser int `yaml:"max_global_exemplars_per_user" flag:"ingester.max-global-exemplars-per-user"`
	// OutOfOrderTimeWindow is how far behind a series' newest sample an older sample is still accepted.
	OutOfOrderTimeWindow model.Duration `yaml:"out_of_order_time_window" flag:"ingester.out-of-order-time-window"`
	// MaxGlobalMetadataPerUser bounds the metric families with metadata a tenant keeps, shared out as above.
	MaxGlobalMetadataPerUser int `yaml:"max_global_metadata_per_user" flag:"ingester.max-global-metadata-per-user"`
	// MaxGlobalMetadataPerMetric bounds the distinct metadata entries of one metric family; every
	// ingester that holds the family holds all of its entries, so it is not shared out.
	MaxGlobalMetadataPerMetric int `yaml:"max_global_metadata_per_metric" flag:"ingester.max-global-metadata-per-metric"`

	// MaxQueryExpressionSizeBytes bounds the length of a PromQL expression, so that parsing stays cheap.
	MaxQueryExpressionSizeBytes int `yaml:"max_query_expression_size_bytes" flag:"query-frontend.max-query-expression-size-bytes"`
	// MaxSubquerySteps bounds the steps at which any one subquery is evaluated; the engine holds a value
	// per step and series, so an unbounded count exhausts memory.
	MaxSubquerySteps int `yaml:"max_subquery_steps" flag:"querier.max-subquery-steps"`
	// MaxQueryLookback is how far back a query may read; 0 is no limit.
	MaxQueryLookback model.Duration `yaml:"max_query_lookback" flag:"querier.max-query-lookback"`
	// MaxTotalQueryLength bounds the time range a query reads, its selectors' ranges included; 0 is no limit.
	MaxTotalQueryLength model.Duration `yaml:"max_total_query_length" flag:"query-frontend.max-total-query-length"`
	// MaxFetchedSeriesPerQuery bounds the series one query reads from ingesters and store-gateways.
	MaxFetchedSeriesPerQuery int `yaml:"max_fetched_series_per_query" flag:"querier.max-fetched-series-per-query"`
	// MaxFetchedChunkBytesPerQuery bounds the chunk bytes one query reads from ingesters and store-gateways.
	MaxFetchedChunkBytesPerQuery int `yaml:"max_fetched_chunk_bytes_per_query" flag:"querier.max-fetched-chunk-bytes-per-query"`
	// MaxFetchedExemplarsPerQuery bounds the exemplars one query_exemplars request reads from ingesters
	// and store-gateways, replicas' copies included.
	MaxFetchedExemplarsPerQuery int `yaml:"max_fetched_exemplars_per_query" flag:"querier.max-fetched-exemplars-per-query"`

	// MaxQueriersPerTenant is how many queriers the query-frontend lets one tenant's queries use at once
	// (a shuffle shard of them), so one tenant's burst leaves the others free; 0 is all of them.
	MaxQueriersPerTenant int `yaml:"max_queriers_per_tenant" flag:"query-frontend.max-queriers-per-tenant"`
	// MaxQueryParallelism bounds the parts (split days, shards) of one query that the query-frontend has
	// queued or running at once, so that one query cannot fill its tenant's queue.
	MaxQueryParallelism int `yaml:"max_query_parallelism" flag:"querier.max-query-parallelism"`
	// MaxCacheFreshness keeps the newest part of range query results out of the results cache: samples
	// that recent may still arrive late.
	MaxCacheFreshness model.Duration `yaml:"max_cache_freshness" flag:"query-frontend.max-cache-freshness"`
	// QueryShardingTotalShards is how many shards the query-frontend splits a shardable query into; 0 or 1
	// does not shard.
	QueryShardingTotalShards int `yaml:"query_sharding_total_shards" flag:"query-frontend.query-sharding-total-shards"`

	// CompactorBlocksRetentionPeriod is how long the tenant's blocks are kept in object storage; 0 is forever.
	CompactorBlocksRetentionPeriod model.Duration `yaml:"compactor_blocks_retention_period" flag:"compactor.blocks-retention-period"`
	// CompactorBlockUploadEnabled lets the tenant upload blocks through the compactor's block upload API.
	CompactorBlockUploadEnabled bool `yaml:"compactor_block_upload_enabled" flag:"compactor.block-upload-enabled"`
	// CompactorBlockUploadValidationEnabled reads every series and sample of an uploaded block before the
	// block becomes visible.
	CompactorBlockUploadValidationEnabled bool `yaml:"compactor_block_upload_validation_enabled" flag:"compactor.block-upload-validation-enabled"`
	// CompactorBlockUploadMaxBlockSizeBytes bounds the files of one uploaded block together; 0 is no limit.
	CompactorBlockUploadMaxBlockSizeBytes int `yaml:"compactor_block_upload_max_block_size_bytes" flag:"compactor.block-upload-max-block-size-bytes"`
	// SeriesDeletionEnabled lets the tenant delete series through the Prometheus admin API's delete_series.
	SeriesDeletionEnabled bool `yaml:"series_deletion_enabled" flag:"querier.series-deletion-enabled"`

	// RulerMaxRulesPerRuleGroup bounds the rules of one of the tenant's rule groups; 0 is no limit.
	RulerMaxRulesPerRuleGroup int `yaml:"ruler_max_rules_per_rule_group" flag:"ruler.max-rules-per-rule-group"`
	// RulerMaxRuleGroupsPerTenant bounds the tenant's rule groups, across namespaces; 0 is no limit.
	RulerMaxRuleGroupsPerTenant int `yaml:"ruler_max_rule_groups_per_tenant" flag:"ruler.max-rule-groups-per-tenant"`
	// RulerEvaluationTimeout bounds each query of the tenant's rules; 0 is no bound.
	RulerEvaluationTimeout model.Duration `yaml:"ruler_evaluation_timeout" flag:"ruler.evaluation-timeout"`

	// AlertmanagerMaxConfigSizeBytes bounds the body of an upload of the tenant's Alertmanager
	// configuration, template files included; 0 is no limit.
	AlertmanagerMaxConfigSizeBytes int `yaml:"alertmanager_max_config_size_bytes" flag:"alertmanager.max-config-size-bytes"`
	// AlertmanagerMaxTemplatesCount bounds the template files of the tenant's Alertmanager configuration; 0
	// is no limit.
	AlertmanagerMaxTemplatesCount int `yaml:"alertmanager_max_templates_count" flag:"alertmanager.max-templates-count"`
	// AlertmanagerMaxAlertsCount bounds the alerts the tenant's Alertmanager holds, resolved ones included
	// until they are garbage collected; 0 is no limit.
	AlertmanagerMaxAlertsCount int `yaml:"alertmanager_max_alerts_count" flag:"alertmanager.max-alerts-count"`
	// AlertmanagerMaxAlertsSizeBytes bounds the total size of the labels and annotations of the alerts
	// the tenant's Alertmanager holds; 0 is no limit.
	AlertmanagerMaxAlertsSizeBytes int `yaml:"alertmanager_max_alerts_size_bytes" flag:"alertmanager.max-alerts-size-bytes"`
	// AlertmanagerMaxSilencesCount bounds the tenant's silences, expired ones included until they are
	// garbage collected; 0 is no limit.
	AlertmanagerMaxSilencesCount int `yaml:"alertmanager_max_silences_count" flag:"alertmanager.max-silences-count"`
	// AlertmanagerMaxSilenceSizeBytes bounds the encoded size of one of the tenant's silences; 0 is no limit.
	AlertmanagerMaxSilenceSizeBytes int `yaml:"alertmanager_max_silence_size_bytes" flag:"alertmanager.max-silence-size-bytes"`
	// AlertmanagerMaxDispatcherAggregationGroups bounds the aggregation groups of the tenant's
	// Alertmanager; 0 is no limit.
	AlertmanagerMaxDispatcherAggregationGroups int `yaml:"alertmanager_max_dispatcher_aggregation_groups" flag:"alertmanager.max-dispatcher-aggregation-groups"`
}

// RegisterFlags registers the limits' flags with their defaults.
func (l *Limits) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&l.MaxLabelNamesPerSeries, "validation.max-label-names-per-series", 30,
		"Maximum number of labels a series may have, __name__ included. Series with more are rejected.")
	f.IntVar(&l.MaxLabelNameLength, "validation.max-length-label-name", 1024,
		"Maximum length of a label name, in bytes. Series with a longer label name are rejected.")
	f.IntVar(&l.MaxLabelValueLength, "validation.max-length-label-value", 2048,
		"Maximum length of a label value (the metric name included), in bytes. Series with a longer value are rejected.")
	l.CreationGracePeriod = model.Duration(10 * time.Minute)
	f.Var(&l.CreationGracePeriod, "validation.create-grace-period",
		"How far into the future, compared to this server's clock, a sample's timestamp may be. Later samples are rejected.")
	f.IntVar(&l.MaxMetadataLength, "validation.max-metadata-length", 1024,
		"Maximum length of a metric family name, help text or unit in metric metadata, in bytes. Longer metadata is rejected.")
	f.BoolVar(&l.AcceptHASamples, "distributor.ha-tracker.enable-for-all-users", false,
		"Deduplicate the tenant's HA pairs: of the replicas of one cluster (-distributor.ha-tracker.cluster), only the elected replica's samples are stored, the others' get 202 and are dropped. Needs -distributor.ha-tracker.enable.")
	f.StringVar(&l.HAClusterLabel, "distributor.ha-tracker.cluster", "cluster",
		"Label naming the HA cluster a series comes from; it stays on the stored series.")
	f.StringVar(&l.HAReplicaLabel, "distributor.ha-tracker.replica", "__replica__",
		"Label naming the replica of the HA cluster a series comes from; it is removed before the series is stored.")
	f.IntVar(&l.HAMaxClusters, "distributor.ha-tracker.max-clusters", 0,
		"Maximum number of HA clusters the tracker keeps for the tenant; samples of further clusters get 400. 0 is no limit.")

	f.Float64Var(&l.IngestionRate, "distributor.ingestion-rate-limit", 10_000,
		"Samples per second a tenant may push, across all distributors (each allows its share: this divided by the healthy distributors). Requests beyond it get 429. 0 is no limit.")
	f.IntVar(&l.IngestionBurstSize, "distributor.ingestion-burst-size", 200_000,
		"Samples a tenant may push at once above -distributor.ingestion-rate-limit, per distributor; it must hold the largest request.")
	f.Float64Var(&l.RequestRate, "distributor.request-rate-limit", 0,
		"Push requests per second a tenant may send, across all distributors, shared out as -distributor.ingestion-rate-limit is. Requests beyond it get 429. 0 is no limit.")
	f.IntVar(&l.RequestBurstSize, "distributor.request-burst-size", 0,
		"Push requests a tenant may send at once above -distributor.request-rate-limit, per distributor. 0 allows one.")
	f.BoolVar(&l.OTelMetricSuffixesEnabled, "distributor.otel-metric-suffixes-enabled", false,
		"Add unit and type suffixes (_seconds, _total, _ratio...) to the names of metrics received over OTLP, as Prometheus' OTLP receiver does by default.")
	f.Var(&l.PromoteOTelResourceAttributes, "distributor.otel-promote-resource-attributes",
		"Comma-separated OTLP resource attributes copied as labels (dots and dashes become underscores) onto every series of their resource. All resource attributes are in target_info either way.")
	f.BoolVar(&l.OTelKeepIdentifyingResourceAttributes, "distributor.otel-keep-identifying-resource-attributes", false,
		"Keep the OTLP resource attributes service.name, service.namespace and service.instance.id as labels of target_info, besides the job and instance labels made from them.")
	f.BoolVar(&l.OTelConvertHistogramsToNHCB, "distributor.otel-convert-histograms-to-nhcb", false,
		"Store OTLP explicit-bucket histograms as native histograms with custom buckets (one series) instead of classic histograms (a _bucket series per bucket, _sum and _count).")
	f.BoolVar(&l.OTelPromoteScopeMetadata, "distributor.otel-promote-scope-metadata", false,
		"Add the OTLP instrumentation scope's name, version, schema URL and attributes to every series as otel_scope_name, otel_scope_version, otel_scope_schema_url and otel_scope_<attribute> labels.")
	f.BoolVar(&l.OTelNativeDeltaIngestion, "distributor.otel-native-delta-ingestion", false,
		"Accept OTLP sums and histograms of delta temporality and store them as they are: each sample is the change over its interval, so query them with sum_over_time rather than rate. Off: such a request is refused with 400.")
	f.BoolVar(&l.OTelCreatedTimestampZeroIngestionEnabled, "distributor.otel-created-timestamp-zero-ingestion-enabled", false,
		"Write the start time of OTLP cumulative points (sums, histograms, summaries) as a sample of value zero at that time, so that rate and increase count a series' first increase. The request then travels to the ingesters as remote write 2.0, which costs more.")

	f.IntVar(&l.MaxGlobalSeriesPerUser, "ingester.max-global-series-per-user", 150_000,
		"Maximum number of in-memory series of a tenant across all ingesters (each ingester allows its share: this times the replication factor divided by the number of ingesters). Samples of further new series are rejected. 0 is no limit.")
	f.IntVar(&l.MaxGlobalSeriesPerMetric, "ingester.max-global-series-per-metric", 0,
		"Maximum number of in-memory series of one metric name of a tenant across all ingesters, shared out as -ingester.max-global-series-per-user is. 0 is no limit.")
	f.IntVar(&l.MaxGlobalExemplarsPerUser, "ingester.max-global-exemplars-per-user", 0,
		"Exemplars kept per tenant across all ingesters, in a circular buffer (each ingester keeps its share, as for -ingester.max-global-series-per-user). 0 stores no exemplars; received ones are dropped.")
	f.Var(&l.OutOfOrderTimeWindow, "ingester.out-of-order-time-window",
		"How far behind a series' newest sample an older sample is still accepted. 0 rejects out-of-order samples.")
	f.IntVar(&l.MaxGlobalMetadataPerUser, "ingester.max-global-metadata-per-user", 50_000,
		"Maximum number of metric families of a tenant with metadata (type, help, unit) kept across all ingesters, shared out as -ingester.max-global-series-per-user is. Metadata of further families is rejected. 0 is no limit.")
	f.IntVar(&l.MaxGlobalMetadataPerMetric, "ingester.max-global-metadata-per-metric", 10,
		"Maximum number of distinct metadata entries of one metric family of a tenant (each ingester holding the family holds all of them). Further entries are rejected until older ones expire (-ingester.metadata-retain-period). 0 is no limit.")

	f.IntVar(&l.MaxQueryExpressionSizeBytes, "query-frontend.max-query-expression-size-bytes", 128<<10,
		"Maximum length of a PromQL expression, in bytes. Longer queries are refused before they are parsed. 0 is no limit.")
	f.IntVar(&l.MaxSubquerySteps, "querier.max-subquery-steps", 1_000_000,
		"Maximum number of steps at which one subquery is evaluated: its range, plus the range over which the enclosing expression is evaluated, divided by its step. Queries with a larger subquery are refused before they run. 0 is no limit.")
	f.Var(&l.MaxQueryLookback, "querier.max-query-lookback",
		"How far back from now a query may read data. Older parts of a query's range are not read. 0 is no limit.")
	f.Var(&l.MaxTotalQueryLength, "query-frontend.max-total-query-length",
		"Maximum time range of a range query, from its start to its end. Longer queries are refused. 0 is no limit.")
	// Mimir has no default for these two; without one, one query over every series of a large tenant
	// takes the querier's memory with it (2M series: +3 GB for a count, +8 GB for a 1h range). The querier
	// holds about 2.6 KB per series a query selects, so 200k series is about 0.5 GB per query, and
	// -querier.max-concurrent (20) of them fit in a machine's memory.
	f.IntVar(&l.MaxFetchedSeriesPerQuery, "querier.max-fetched-series-per-query", 200_000,
		"Maximum number of series one query may read from ingesters and store-gateways. A query that needs more is refused, and the ingesters and store-gateways stop sending. 0 is no limit.")
	f.IntVar(&l.MaxFetchedChunkBytesPerQuery, "querier.max-fetched-chunk-bytes-per-query", 1<<30,
		"Maximum size, in bytes, of the chunks one query may read from ingesters and store-gateways. A query that needs more is refused, and the ingesters and store-gateways stop sending. 0 is no limit.")
	// An exemplar held by the querier is about 150 bytes: 1M is about 150 MB for one request.
	f.IntVar(&l.MaxFetchedExemplarsPerQuery, "querier.max-fetched-exemplars-per-query", 1_000_000,
		"Maximum number of exemplars one query_exemplars request may read from ingesters and store-gateways, counting each replica's copy. A request that needs more is refused. 0 is no limit.")
	f.IntVar(&l.MaxQueriersPerTenant, "query-frontend.max-queriers-per-tenant", 0,
		"Maximum number of queriers that run one tenant's queries at once: the query-frontend gives each tenant a stable subset of the queriers connected to it. 0 is all of them.")
	f.IntVar(&l.MaxQueryParallelism, "querier.max-query-parallelism", 14,
		"Maximum number of parts of one query (days of a split range query, shards) the query-frontend has queued or running at once; the others wait for them.")
	l.MaxCacheFreshness = model.Duration(10 * time.Minute)
	f.Var(&l.MaxCacheFreshness, "query-frontend.max-cache-freshness",
		"Range query results newer than this are not cached, since late samples may still change them.")
	f.IntVar(&l.QueryShardingTotalShards, "query-frontend.query-sharding-total-shards", 16,
		"Number of shards a shardable query is split into when -query-frontend.parallelize-shardable-queries is on. 0 or 1 does not shard.")
	f.Var(&l.CompactorBlocksRetentionPeriod, "compactor.blocks-retention-period",
		"Blocks of a tenant whose newest sample is older than this are deleted from object storage by the compactor. 0 keeps blocks forever.")
	f.BoolVar(&l.CompactorBlockUploadEnabled, "compactor.block-upload-enabled", false,
		"Let the tenant upload TSDB blocks (backfill) through the compactor's /api/v1/upload/block API. Uploads of tenants without it get 403.")
	f.BoolVar(&l.CompactorBlockUploadValidationEnabled, "compactor.block-upload-validation-enabled", true,
		"Read every series and sample of an uploaded block (labels valid, samples inside the block's time range, index and chunks readable) before the block becomes visible. Off, only meta.json and the files' sizes are checked.")
	f.IntVar(&l.CompactorBlockUploadMaxBlockSizeBytes, "compactor.block-upload-max-block-size-bytes", 0,
		"The largest total size, in bytes, of the files of one block a tenant uploads; a file that would exceed it gets 413. 0 is no limit.")
	f.BoolVar(&l.SeriesDeletionEnabled, "querier.series-deletion-enabled", false,
		"Let the tenant delete series with POST /prometheus/api/v1/admin/tsdb/delete_series. Requests of tenants without it get 403.")
	f.IntVar(&l.RulerMaxRulesPerRuleGroup, "ruler.max-rules-per-rule-group", 20,
		"Maximum number of rules in one rule group of a tenant. The ruler's config API refuses larger groups. 0 is no limit.")
	f.IntVar(&l.RulerMaxRuleGroupsPerTenant, "ruler.max-rule-groups-per-tenant", 70,
		"Maximum number of rule groups of a tenant, across its namespaces. The ruler's config API refuses further groups. 0 is no limit.")
	l.RulerEvaluationTimeout = model.Duration(2 * time.Minute)
	f.Var(&l.RulerEvaluationTimeout, "ruler.evaluation-timeout",
		"The longest one query of a tenant's rule may run; a query that takes longer fails the rule's evaluation. 0 is no limit.")

	f.IntVar(&l.AlertmanagerMaxConfigSizeBytes, "alertmanager.max-config-size-bytes", 1<<20,
		"The largest body an upload of a tenant's Alertmanager configuration (POST /api/v1/alerts) may have, template files included; larger ones get 413. 0 is no limit.")
	f.IntVar(&l.AlertmanagerMaxTemplatesCount, "alertmanager.max-templates-count", 100,
		"The most template files a tenant's Alertmanager configuration may have. 0 is no limit.")
	// Bounded by default: a tenant's client that floods alerts or silences must not take the memory
	// every other tenant's Alertmanager runs in.
	f.IntVar(&l.AlertmanagerMaxAlertsCount, "alertmanager.max-alerts-count", 20_000,
		"The most alerts a tenant's Alertmanager holds, resolved ones included until they are garbage collected; new alerts beyond it are dropped. 0 is no limit.")
	// The count alone lets a few alerts with huge annotations (each up to an API request's 4 MiB) take
	// gigabytes; 64 MiB is over 3 KiB for each of the default 20,000 alerts, far above usual alerts.
	f.IntVar(&l.AlertmanagerMaxAlertsSizeBytes, "alertmanager.max-alerts-size-bytes", 64<<20,
		"The largest total size, in bytes, of the labels, annotations and generator URLs of the alerts a tenant's Alertmanager holds; new alerts, and updates that grow an alert, beyond it are dropped (resolving an alert always passes). 0 is no limit.")
	f.IntVar(&l.AlertmanagerMaxSilencesCount, "alertmanager.max-silences-count", 10_000,
		"The most silences a tenant may have, expired ones included until they are garbage collected. 0 is no limit.")
	f.IntVar(&l.AlertmanagerMaxSilenceSizeBytes, "alertmanager.max-silence-size-bytes", 64<<10,
		"The largest encoded size of one silence of a tenant, in bytes. 0 is no limit.")
	f.IntVar(&l.AlertmanagerMaxDispatcherAggregationGroups, "alertmanager.max-dispatcher-aggregation-groups", 1000,
		"The most aggregation groups (alerts grouped by a route's group_by) a tenant's Alertmanager keeps; an alert that would need a new group beyond it is not routed, and so not notified. 0 is no limit.")
}

// DefaultLimits returns the limits as their flags default them.
func DefaultLimits() Limits {
	var l Limits
	l.RegisterFlags(flag.NewFlagSet("limits", flag.PanicOnError))
	return l
}

// Validate reports limits that would reject every series or sample.
func (l *Limits) Validate() error {
	var errs []error
	positive := func(field string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("-%s must be positive, got %d", FlagOf(field), v))
		}
	}
	notNegative := func(field string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("-%s must not be negative, got %d", FlagOf(field), v))
		}
	}
	positive("max_label_names_per_series", l.MaxLabelNamesPerSeries)
	positive("max_label_name_length", l.MaxLabelNameLength)
	positive("max_label_value_length", l.MaxLabelValueLength)
	positive("max_metadata_length", l.MaxMetadataLength)
	notNegative("ha_max_clusters", int64(l.HAMaxClusters))
	if l.AcceptHASamples && (l.HAClusterLabel == "" || l.HAReplicaLabel == "" || l.HAClusterLabel == l.HAReplicaLabel) {
		errs = append(errs, fmt.Errorf("-%s and -%s must be two different, non-empty label names", FlagOf("ha_cluster_label"), FlagOf("ha_replica_label")))
	}
	if l.CreationGracePeriod < 0 {
		errs = append(errs, fmt.Errorf("-%s must not be negative, got %s", FlagOf("creation_grace_period"), l.CreationGracePeriod))
	}
	if l.IngestionRate < 0 || l.RequestRate < 0 {
		errs = append(errs, fmt.Errorf("-%s and -%s must not be negative", FlagOf("ingestion_rate"), FlagOf("request_rate")))
	}
	if l.IngestionRate > 0 && l.IngestionBurstSize <= 0 {
		errs = append(errs, fmt.Errorf("-%s must be positive when -%s is set", FlagOf("ingestion_burst_size"), FlagOf("ingestion_rate")))
	}
	notNegative("request_burst_size", int64(l.RequestBurstSize))
	notNegative("max_global_series_per_user", int64(l.MaxGlobalSeriesPerUser))
	notNegative("max_global_series_per_metric", int64(l.MaxGlobalSeriesPerMetric))
	notNegative("max_global_exemplars_per_user", int64(l.MaxGlobalExemplarsPerUser))
	notNegative("out_of_order_time_window", int64(l.OutOfOrderTimeWindow))
	notNegative("max_global_metadata_per_user", int64(l.MaxGlobalMetadataPerUser))
	notNegative("max_global_metadata_per_metric", int64(l.MaxGlobalMetadataPerMetric))
	notNegative("max_query_expression_size_bytes", int64(l.MaxQueryExpressionSizeBytes))
	notNegative("max_subquery_steps", int64(l.MaxSubquerySteps))
	notNegative("max_query_lookback", int64(l.MaxQueryLookback))
	notNegative("max_total_query_length", int64(l.MaxTotalQueryLength))
	notNegative("max_fetched_series_per_query", int64(l.MaxFetchedSeriesPerQuery))
	notNegative("max_fetched_chunk_bytes_per_query", int64(l.MaxFetchedChunkBytesPerQuery))
	notNegative("max_fetched_exemplars_per_query", int64(l.MaxFetchedExemplarsPerQuery))
	notNegative("max_queriers_per_tenant", int64(l.MaxQueriersPerTenant))
	positive("max_query_parallelism", l.MaxQueryParallelism)
	notNegative("max_cache_freshness", int64(l.MaxCacheFreshness))
	notNegative("query_sharding_total_shards", int64(l.QueryShardingTotalShards))
	notNegative("compactor_blocks_retention_period", int64(l.CompactorBlocksRetentionPeriod))
	notNegative("compactor_block_upload_max_block_size_bytes", int64(l.CompactorBlockUploadMaxBlockSizeBytes))
	notNegative("ruler_max_rules_per_rule_group", int64(l.RulerMaxRulesPerRuleGroup))
	notNegative("ruler_max_rule_groups_per_tenant", int64(l.RulerMaxRuleGroupsPerTenant))
	notNegative("ruler_evaluation_timeout", int64(l.RulerEvaluationTimeout))
	notNegative("alertmanager_max_config_size_bytes", int64(l.AlertmanagerMaxConfigSizeBytes))
	notNegative("alertmanager_max_templates_count", int64(l.AlertmanagerMaxTemplatesCount))
	notNegative("alertmanager_max_alerts_count", int64(l.AlertmanagerMaxAlertsCount))
	notNegative("alertmanager_max_alerts_size_bytes", int64(l.AlertmanagerMaxAlertsSizeBytes))
	notNegative("alertmanager_max_silences_count", int64(l.AlertmanagerMaxSilencesCount))
	notNegative("alertmanager_max_silence_size_bytes", int64(l.AlertmanagerMaxSilenceSizeBytes))
	notNegative("alertmanager_max_dispatcher_aggregation_groups", int64(l.AlertmanagerMaxDispatcherAggregationGroups))
	return errors.Join(errs...)
}

// UnmarshalYAML decodes a tenant's overrides on top of the values l already holds, so a tenant lists
// only the limits it changes. A key that names no limit is an error: a typo must not silently leave a
// tenant with the default.
func (l *Limits) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: limits must be a mapping", node.Line)
	}
	for i := 0; i < len(node.Content); i += 2 {
		key := node.Content[i]
		if _, ok := limitTable.byKey[key.Value]; !ok {
			return fmt.Errorf("line %d: unknown limit %q", key.Line, key.Value)
		}
	}
	type plain Limits // without this method, so decoding does not recurse
	return node.Decode((*plain)(l))
}

// RulerMaxRulesPerRuleGroup returns the tenant's RulerMaxRulesPerRuleGroup. This accessor and the next
// let *Overrides serve the ruler, which asks for only these two limits.
func (o *Overrides) RulerMaxRulesPerRuleGroup(tenant string) int {
	return o.For(tenant).RulerMaxRulesPerRuleGroup
}

// RulerMaxRuleGroupsPerTenant returns the tenant's RulerMaxRuleGroupsPerTenant.
func (o *Overrides) RulerMaxRuleGroupsPerTenant(tenant string) int {
	return o.For(tenant).RulerMaxRuleGroupsPerTenant
}

// RulerEvaluationTimeout returns the tenant's RulerEvaluationTimeout.
func (o *Overrides) RulerEvaluationTimeout(tenant string) time.Duration {
	return time.Duration(o.For(tenant).RulerEvaluationTimeout)
}

// AlertmanagerMaxConfigSizeBytes returns the tenant's AlertmanagerMaxConfigSizeBytes. This accessor and
// the next let *Overrides serve the Alertmanager, which reads them at every call.
func (o *Overrides) AlertmanagerMaxConfigSizeBytes(tenant string) int {
	return o.For(tenant).AlertmanagerMaxConfigSizeBytes
}

// AlertmanagerMaxTemplatesCount returns the tenant's AlertmanagerMaxTemplatesCount.
func (o *Overrides) AlertmanagerMaxTemplatesCount(tenant string) int {
	return o.For(tenant).AlertmanagerMaxTemplatesCount
}

// AlertmanagerMaxAlertsCount returns the tenant's AlertmanagerMaxAlertsCount.
func (o *Overrides) AlertmanagerMaxAlertsCount(tenant string) int {
	return o.For(tenant).AlertmanagerMaxAlertsCount
}

// AlertmanagerMaxAlertsSizeBytes returns the tenant's AlertmanagerMaxAlertsSizeBytes.
func (o *Overrides) AlertmanagerMaxAlertsSizeBytes(tenant string) int {
	return o.For(tenant).AlertmanagerMaxAlertsSizeBytes
}

// AlertmanagerMaxSilencesCount returns the tenant's AlertmanagerMaxSilencesCount.
func (o *Overrides) AlertmanagerMaxSilencesCount(tenant string) int {
	return o.For(tenant).AlertmanagerMaxSilencesCount
}

// AlertmanagerMaxSilenceSizeBytes returns the tenant's AlertmanagerMaxSilenceSizeBytes.
func (o *Overrides) AlertmanagerMaxSilenceSizeBytes(tenant string) int {
	return o.For(tenant).AlertmanagerMaxSilenceSizeBytes
}

// AlertmanagerMaxDispatcherAggregationGroups returns the tenant's AlertmanagerMaxDispatcherAggregationGroups.
func (o *Overrides) AlertmanagerMaxDispatcherAggregationGroups(tenant string) int {
	return o.For(tenant).AlertmanagerMaxDispatcherAggregationGroups
}

// limitField describes one limit.
type limitField struct {
	index int // in Limits
	flag  string
}

// limitTable describes every limit, read once from the struct tags.
var limitTable = func() (t struct {
	byKey     map[string]limitField
	keyByFlag map[string]string
	keys      []string // in the order of the struct
}) {
	typ := reflect.TypeFor[Limits]()
	t.byKey = make(map[string]limitField, typ.NumField())
	t.keyByFlag = make(map[string]string, typ.NumField())
	for i := range typ.NumField() {
		f := typ.Field(i)
		key, flagName := f.Tag.Get("yaml"), f.Tag.Get("flag")
		t.byKey[key] = limitField{index: i, flag: flagName}
		t.keyByFlag[flagName] = key
		t.keys = append(t.keys, key)
	}
	return t
}()

// FlagOf returns the flag (without its dash) of the limit with YAML key key, or "" if there is none.
func FlagOf(key string) string { return limitTable.byKey[key].flag }

// LimitKeys returns the YAML key of every limit, in the order of the struct.
func LimitKeys() []string { return slices.Clone(limitTable.keys) }

// KeyOfFlag returns the YAML key of the limit that flag (without its dash) sets, and false when flag
// sets no limit.
func KeyOfFlag(flagName string) (string, bool) {
	key, ok := limitTable.keyByFlag[flagName]
	return key, ok
}

// numericValue returns the value of the limit with YAML key key as a number: durations in seconds.
func (l *Limits) numericValue(key string) (float64, bool) {
	f, ok := limitTable.byKey[key]
	if !ok {
		return 0, false
	}
	v := reflect.ValueOf(l).Elem().Field(f.index)
	switch x := v.Interface().(type) {
	case model.Duration:
		return time.Duration(x).Seconds(), true
	case time.Duration:
		return x.Seconds(), true
	case int:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// ErrorID is the identifier of an error a limit causes, "err-strata-" followed by the limit's key with
// dashes: it is what docs/errors.md has a section for.
func ErrorID(key string) string {
	return "err-strata-" + strings.ReplaceAll(key, "_", "-")
}

// LimitError is a request refused because it crossed a tenant's limit.
type LimitError struct {
	// Key is the limit's YAML key.
	Key string
	// What says what crossed the limit and by how much.
	What string
}

// Error names the limit, its error ID and how to change it, so the message is actionable on its own.
func (e *LimitError) Error() string {
	return fmt.Sprintf("%s (%s). To adjust the related per-tenant limit, configure -%s, or %s in the tenant's runtime overrides",
		e.What, ErrorID(e.Key), FlagOf(e.Key), e.Key)
}

// NewLimitError returns the error of limit key, with what formatted from format and args.
func NewLimitError(key, format string, args ...any) *LimitError {
	return &LimitError{Key: key, What: fmt.Sprintf(format, args...)}
}

// LocalLimit converts a cluster-wide limit into the share of one of ingesters instances, each holding
// replicationFactor copies' worth of a 1/ingesters slice of the series. 0 stays "no limit"; with no
// ingesters known the whole limit applies.
func LocalLimit(global, replicationFactor, ingesters int) int {
	if global <= 0 || ingesters <= 0 {
		return global
	}
	rf := max(replicationFactor, 1)
	local := int(int64(global) * int64(min(rf, ingesters)) / int64(ingesters))
	return max(local, 1)
}
