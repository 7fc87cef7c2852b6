package main

// The dashboards. Every query selects Strata's processes with job=~"$job" (no cluster or namespace label
// is assumed) and uses only metrics that Strata exports; integration/dashboards_test.go runs each one
// against a Strata that scrapes itself and fails when one returns nothing.

// jobMatcher starts every query's selector: Strata's processes, whatever the job is named.
const jobMatcher = `job=~"$job"`

func dashboards() []dash {
	return []dash{writes(), reads(), ingesters(), objectStorage(), compactor(), rulerAlertmanager(), tenants()}
}

func writes() dash {
	return dash{
		uid:         "strata-writes",
		title:       "Strata / Writes",
		description: "The write path: remote write and OTLP pushes into the distributors, samples appended by the ingesters, and samples refused.",
		rows: []row{
			{title: "Distributor", panels: []panel{
				{title: "Push requests by status", unit: "reqps",
					description: "Push requests answered per second, by HTTP status: 2xx stored, 4xx refused (not retried by the client, except 429), 5xx failed (retried).",
					targets:     []target{{`sum by (status) (rate(strata_distributor_push_duration_seconds_count{` + jobMatcher + `}[$__rate_interval]))`, "{{status}}"}}},
				{title: "Push latency", unit: "s",
					description: "Time from a push request's arrival to its answer, quantiles over all distributors.",
					targets: []target{
						{`histogram_quantile(0.99, sum by (le) (rate(strata_distributor_push_duration_seconds_bucket{` + jobMatcher + `}[$__rate_interval])))`, "p99"},
						{`histogram_quantile(0.5, sum by (le) (rate(strata_distributor_push_duration_seconds_bucket{` + jobMatcher + `}[$__rate_interval])))`, "p50"},
						{`sum(rate(strata_distributor_push_duration_seconds_sum{` + jobMatcher + `}[$__rate_interval])) / sum(rate(strata_distributor_push_duration_seconds_count{` + jobMatcher + `}[$__rate_interval]))`, "mean"},
					}},
				{title: "Push error ratio by status", unit: "percentunit",
					description: "Share of push requests answered with each non-2xx status: 5xx is Strata's fault (clients retry), 4xx the client's data or a limit (429 is retried).",
					targets:     []target{{`sum by (status) (rate(strata_distributor_push_duration_seconds_count{` + jobMatcher + `, status!~"2.."}[$__rate_interval])) / ignoring (status) group_left () sum(rate(strata_distributor_push_duration_seconds_count{` + jobMatcher + `}[$__rate_interval]))`, "{{status}}"}}},
				{title: "Samples received", unit: "short",
					description: "Samples per second accepted by the distributors, before replication.",
					targets:     []target{{`sum(rate(strata_distributor_received_samples_total{` + jobMatcher + `}[$__rate_interval]))`, "received"}}},
				{title: "Samples discarded by reason", unit: "short",
					description: "Samples per second refused by validation or a limit; the reason names the limit (docs/errors.md).",
					targets:     []target{{`sum by (reason) (rate(strata_discarded_samples_total{` + jobMatcher + `}[$__rate_interval]))`, "{{reason}}"}}},
				{title: "OTLP data points by tenant", unit: "short",
					description: "OTLP data points per second received on /otlp/v1/metrics, by tenant, and the OTLP requests.",
					targets: []target{
						{`sum by (user) (rate(strata_distributor_otlp_received_data_points_total{` + jobMatcher + `}[$__rate_interval]))`, "{{user}}"},
						{`sum(rate(strata_distributor_otlp_requests_total{` + jobMatcher + `}[$__rate_interval]))`, "requests"},
					}},
				{title: "Strata processes", unit: "short",
					description: "Strata processes scraped under $job (every component, not only distributors), and how many are up.",
					targets: []target{
						{`count(up{` + jobMatcher + `})`, "scraped"},
						{`sum(up{` + jobMatcher + `})`, "up"},
					}},
			}},
			{title: "Ingesters", panels: []panel{
				{title: "Samples appended by ingesters", unit: "short",
					description: "Samples per second written to the ingesters' TSDB heads: received samples times the replication factor when all is well.",
					targets: []target{
						{`sum(rate(strata_ingester_ingested_samples_total{` + jobMatcher + `}[$__rate_interval]))`, "ingested"},
						{`sum by (type) (rate(strata_ingester_prometheus_tsdb_head_samples_appended_total{` + jobMatcher + `}[$__rate_interval]))`, "appended {{type}}"},
					}},
				{title: "Samples refused by the TSDB", unit: "short",
					description: "Samples the ingesters' TSDBs refused: out of order, too old, out of the head's bounds.",
					targets: []target{
						{`sum by (type) (rate(strata_ingester_prometheus_tsdb_out_of_order_samples_total{` + jobMatcher + `}[$__rate_interval]))`, "out of order {{type}}"},
						{`sum by (type) (rate(strata_ingester_prometheus_tsdb_too_old_samples_total{` + jobMatcher + `}[$__rate_interval]))`, "too old {{type}}"},
						{`sum by (type) (rate(strata_ingester_prometheus_tsdb_out_of_bound_samples_total{` + jobMatcher + `}[$__rate_interval]))`, "out of bounds {{type}}"},
					}},
				{title: "WAL writes failed", unit: "short",
					description: "WAL records that could not be written (a full or failing disk): pushes fail with 5xx while this is above zero.",
					targets:     []target{{`sum by (instance) (rate(strata_ingester_prometheus_tsdb_wal_writes_failed_total{` + jobMatcher + `}[$__rate_interval]))`, "{{instance}}"}}},
			}},
		},
	}
}

func reads() dash {
	return dash{
		uid:         "strata-reads",
		title:       "Strata / Reads",
		description: "The read path: queries through the query-frontend's queue to the queriers, and the queriers' reads from ingesters and store-gateways.",
		rows: []row{
			{title: "Query-frontend", panels: []panel{
				{title: "Queries by status", unit: "reqps",
					description: "Queries answered per second by the query-frontend, by HTTP status code.",
					targets:     []target{{`sum by (status_code) (rate(strata_query_frontend_request_duration_seconds_count{` + jobMatcher + `}[$__rate_interval]))`, "{{status_code}}"}}},
				{title: "Query latency", unit: "s",
					description: "Time from a query's arrival at the query-frontend to its answer.",
					targets: []target{
						{`histogram_quantile(0.99, sum by (le) (rate(strata_query_frontend_request_duration_seconds_bucket{` + jobMatcher + `}[$__rate_interval])))`, "p99"},
						{`histogram_quantile(0.5, sum by (le) (rate(strata_query_frontend_request_duration_seconds_bucket{` + jobMatcher + `}[$__rate_interval])))`, "p50"},
					}},
				{title: "Time in queue", unit: "s",
					description: "Time a query waited in its tenant's queue for a querier: high when the queriers are saturated.",
					targets: []target{
						{`histogram_quantile(0.99, sum by (le) (rate(strata_query_frontend_queue_duration_seconds_bucket{` + jobMatcher + `}[$__rate_interval])))`, "p99"},
						{`histogram_quantile(0.5, sum by (le) (rate(strata_query_frontend_queue_duration_seconds_bucket{` + jobMatcher + `}[$__rate_interval])))`, "p50"},
					}},
				{title: "Connected queriers", unit: "short",
					description: "Queriers and querier workers connected to each query-frontend; zero means queries wait until they time out.",
					targets: []target{
						{`sum by (instance) (strata_query_frontend_connected_queriers{` + jobMatcher + `})`, "queriers {{instance}}"},
						{`sum by (instance) (strata_query_frontend_connected_workers{` + jobMatcher + `})`, "workers {{instance}}"},
					}},
				{title: "Results cache", unit: "percentunit",
					description: "Share of range-query pieces answered from the results cache.",
					targets:     []target{{`sum(rate(strata_frontend_query_result_cache_hits_total{` + jobMatcher + `}[$__rate_interval])) / sum(rate(strata_frontend_query_result_cache_requests_total{` + jobMatcher + `}[$__rate_interval]))`, "hit ratio"}}},
				{title: "Cache hit ratio by cache", unit: "percentunit",
					description: "Share of keys found, for each cache the query path uses (in memory or memcached).",
					targets:     []target{{`sum by (name) (rate(strata_cache_hits_total{` + jobMatcher + `}[$__rate_interval])) / sum by (name) (rate(strata_cache_fetched_keys_total{` + jobMatcher + `}[$__rate_interval]))`, "{{name}}"}}},
				{title: "Split queries and retries", unit: "short",
					description: "Range queries split by interval per second, and queries retried on another querier.",
					targets: []target{
						{`sum(rate(strata_frontend_split_queries_total{` + jobMatcher + `}[$__rate_interval]))`, "split"},
						{`sum(rate(strata_query_frontend_retries_total{` + jobMatcher + `}[$__rate_interval]))`, "retries"},
					}},
			}},
			{title: "Querier", panels: []panel{
				{title: "Queries run by queriers", unit: "reqps",
					description: "Queries the querier workers took from the query-frontend, by answer status code.",
					targets:     []target{{`sum by (status_code) (rate(strata_querier_worker_queries_total{` + jobMatcher + `}[$__rate_interval]))`, "{{status_code}}"}}},
				{title: "PromQL engine time", unit: "s",
					description: "90th percentile of the time the PromQL engine spends in each phase of a query.",
					targets:     []target{{`max by (slice) (strata_querier_prometheus_engine_query_duration_seconds{` + jobMatcher + `, quantile="0.9"})`, "{{slice}}"}}},
				{title: "Samples read", unit: "short",
					description: "Samples per second the queriers' PromQL engines loaded.",
					targets:     []target{{`sum(rate(strata_querier_prometheus_engine_query_samples_total{` + jobMatcher + `}[$__rate_interval]))`, "samples"}}},
				{title: "Bucket index reads", unit: "short",
					description: "Per-tenant bucket index reads by outcome; a querier cannot find blocks without it.",
					targets:     []target{{`sum by (outcome) (rate(strata_querier_bucket_index_reads_total{` + jobMatcher + `}[$__rate_interval]))`, "{{outcome}}"}}},
			}},
			{title: "Store-gateway", panels: []panel{
				{title: "Store-gateway request latency", unit: "s",
					description: "99th percentile of store-gateway gRPC requests, by method.",
					targets:     []target{{`histogram_quantile(0.99, sum by (le, method) (rate(strata_storegateway_request_duration_seconds_bucket{` + jobMatcher + `}[$__rate_interval])))`, "{{method}}"}}},
				{title: "Store-gateway requests", unit: "reqps",
					description: "Store-gateway gRPC requests per second, by method.",
					targets:     []target{{`sum by (method) (rate(strata_storegateway_request_duration_seconds_count{` + jobMatcher + `}[$__rate_interval]))`, "{{method}}"}}},
				{title: "Store-gateway cache hit ratio", unit: "percentunit",
					description: "Share of index lookups answered from each store-gateway cache.",
					targets:     []target{{`sum by (cache) (rate(strata_storegateway_cache_hits_total{` + jobMatcher + `}[$__rate_interval])) / sum by (cache) (rate(strata_storegateway_cache_requests_total{` + jobMatcher + `}[$__rate_interval]))`, "{{cache}}"}}},
			}},
		},
	}
}

func ingesters() dash {
	return dash{
		uid:         "strata-ingesters",
		title:       "Strata / Ingesters",
		description: "The ingesters: the ring, in-memory series, the WAL, and shipping blocks to object storage.",
		rows: []row{
			{title: "Rings", panels: []panel{
				{title: "Ring members by state", unit: "short",
					description: "Members of each ring by state, as the processes that read the ring see it (the highest count any of them reports). Unhealthy members have missed their heartbeats.",
					targets:     []target{{`max by (name, state) (strata_ring_members{` + jobMatcher + `})`, "{{name}} {{state}}"}}},
				{title: "Ring heartbeats", unit: "short",
					description: "Heartbeats written to the ring per second, and those that failed.",
					targets: []target{
						{`sum by (name) (rate(strata_ring_lifecycler_heartbeats_total{` + jobMatcher + `}[$__rate_interval]))`, "{{name}}"},
						{`sum by (name) (rate(strata_ring_lifecycler_heartbeat_failures_total{` + jobMatcher + `}[$__rate_interval]))`, "{{name}} failed"},
					}},
				{title: "Tenants per ingester", unit: "short",
					description: "Tenants with a TSDB open in each ingester.",
					targets:     []target{{`sum by (instance) (strata_ingester_tenants{` + jobMatcher + `})`, "{{instance}}"}}},
			}},
			{title: "Series and memory", panels: []panel{
				{title: "In-memory series per ingester", unit: "short",
					description: "Series in the ingesters' TSDB heads.",
					targets:     []target{{`sum by (instance) (strata_ingester_prometheus_tsdb_head_series{` + jobMatcher + `})`, "{{instance}}"}}},
				{title: "Active series per ingester", unit: "short",
					description: "Series that received a sample recently (-ingester.active-series-metrics-idle-timeout).",
					targets:     []target{{`sum by (instance) (strata_ingester_active_series{` + jobMatcher + `})`, "{{instance}}"}}},
				{title: "Memory", unit: "bytes",
					description: "Resident memory and Go heap of each Strata process.",
					targets: []target{
						{`max by (instance) (process_resident_memory_bytes{` + jobMatcher + `})`, "RSS {{instance}}"},
						{`max by (instance) (go_memstats_heap_inuse_bytes{` + jobMatcher + `})`, "heap {{instance}}"},
					}},
				{title: "Series created and removed", unit: "short",
					description: "Series created in and removed from the heads per second: churn.",
					targets: []target{
						{`sum(rate(strata_ingester_prometheus_tsdb_head_series_created_total{` + jobMatcher + `}[$__rate_interval]))`, "created"},
						{`sum(rate(strata_ingester_prometheus_tsdb_head_series_removed_total{` + jobMatcher + `}[$__rate_interval]))`, "removed"},
					}},
				{title: "Head chunks", unit: "short",
					description: "Chunks held in the heads.",
					targets:     []target{{`sum by (instance) (strata_ingester_prometheus_tsdb_head_chunks{` + jobMatcher + `})`, "{{instance}}"}}},
			}},
			{title: "WAL and blocks", panels: []panel{
				{title: "WAL size", unit: "bytes",
					description: "Bytes of WAL on disk per ingester; it is replayed on restart.",
					targets:     []target{{`sum by (instance) (strata_ingester_prometheus_tsdb_wal_storage_size_bytes{` + jobMatcher + `})`, "{{instance}}"}}},
				{title: "WAL fsync latency", unit: "s",
					description: "90th percentile of WAL fsyncs, the slowest tenant per ingester.",
					targets:     []target{{`max by (instance) (strata_ingester_prometheus_tsdb_wal_fsync_duration_seconds{` + jobMatcher + `, quantile="0.9"})`, "{{instance}}"}}},
				{title: "Head compactions and truncations", unit: "short",
					description: "Blocks cut from the heads per second, and failures of compaction or truncation.",
					targets: []target{
						{`sum(rate(strata_ingester_prometheus_tsdb_compactions_total{` + jobMatcher + `}[$__rate_interval]))`, "compactions"},
						{`sum(rate(strata_ingester_prometheus_tsdb_compactions_failed_total{` + jobMatcher + `}[$__rate_interval]))`, "compactions failed"},
						{`sum(rate(strata_ingester_prometheus_tsdb_head_truncations_failed_total{` + jobMatcher + `}[$__rate_interval]))`, "truncations failed"},
					}},
				{title: "Blocks shipped", unit: "short",
					description: "Blocks uploaded to object storage per second, and failed uploads.",
					targets: []target{
						{`sum(rate(strata_ingester_shipper_uploads_total{` + jobMatcher + `}[$__rate_interval]))`, "uploaded"},
						{`sum(rate(strata_ingester_shipper_upload_failures_total{` + jobMatcher + `}[$__rate_interval]))`, "failed"},
					}},
				{title: "Time since last successful ship", unit: "s",
					description: "Seconds since each ingester's shipper last completed a sync with object storage.",
					targets:     []target{{`time() - max by (instance) (strata_ingester_shipper_last_successful_sync_timestamp_seconds{` + jobMatcher + `} > 0)`, "{{instance}}"}}},
				{title: "TSDBs that failed to open", unit: "short",
					description: "Tenant TSDBs the ingesters could not open (disk full, corrupt WAL): that tenant's pushes fail.",
					targets:     []target{{`sum by (instance) (increase(strata_ingester_tsdb_open_failures_total{` + jobMatcher + `}[$__rate_interval]))`, "{{instance}}"}}},
			}},
		},
	}
}

func objectStorage() dash {
	return dash{
		uid:         "strata-object-storage",
		title:       "Strata / Object storage",
		description: "Operations on the blocks bucket by component, and the store-gateways' view of it.",
		rows: []row{
			{title: "Bucket operations", panels: []panel{
				{title: "Operations by component", unit: "ops",
					description: "Object storage operations per second, by component and operation.",
					targets:     []target{{`sum by (component, operation) (rate(strata_bucket_operations_total{` + jobMatcher + `}[$__rate_interval]))`, "{{component}} {{operation}}"}}},
				{title: "Failure ratio", unit: "percentunit",
					description: "Share of object storage operations that failed, by component.",
					targets:     []target{{`sum by (component) (rate(strata_bucket_operation_failures_total{` + jobMatcher + `}[$__rate_interval])) / sum by (component) (rate(strata_bucket_operations_total{` + jobMatcher + `}[$__rate_interval]))`, "{{component}}"}}},
				{title: "Operation latency", unit: "s",
					description: "99th percentile of object storage operations, by operation.",
					targets:     []target{{`histogram_quantile(0.99, sum by (le, operation) (rate(strata_bucket_operation_duration_seconds_bucket{` + jobMatcher + `}[$__rate_interval])))`, "{{operation}}"}}},
			}},
			{title: "Store-gateway blocks", panels: []panel{
				{title: "Blocks loaded", unit: "short",
					description: "Blocks each store-gateway serves.",
					targets:     []target{{`sum by (instance) (strata_storegateway_blocks_loaded{` + jobMatcher + `})`, "{{instance}}"}}},
				{title: "Block loads and drops", unit: "short",
					description: "Blocks loaded, dropped and failed to load per second.",
					targets: []target{
						{`sum(rate(strata_storegateway_block_loads_total{` + jobMatcher + `}[$__rate_interval]))`, "loads"},
						{`sum(rate(strata_storegateway_block_drops_total{` + jobMatcher + `}[$__rate_interval]))`, "drops"},
						{`sum(rate(strata_storegateway_block_load_failures_total{` + jobMatcher + `}[$__rate_interval]))`, "load failures"},
					}},
				{title: "Bucket syncs", unit: "short",
					description: "Store-gateway syncs with the bucket per second, and failed ones.",
					targets: []target{
						{`sum(rate(strata_storegateway_blocks_syncs_total{` + jobMatcher + `}[$__rate_interval]))`, "syncs"},
						{`sum(rate(strata_storegateway_blocks_sync_failures_total{` + jobMatcher + `}[$__rate_interval]))`, "failures"},
					}},
				{title: "Sync duration", unit: "s",
					description: "99th percentile of a store-gateway sync with the bucket.",
					targets:     []target{{`histogram_quantile(0.99, sum by (le) (rate(strata_storegateway_blocks_sync_duration_seconds_bucket{` + jobMatcher + `}[$__rate_interval])))`, "p99"}}},
				{title: "Range reads", unit: "Bps",
					description: "Bytes per second the store-gateways read from object storage by range.",
					targets:     []target{{`sum(rate(strata_storegateway_bucket_range_read_bytes_total{` + jobMatcher + `}[$__rate_interval]))`, "bytes"}}},
				{title: "Cache size", unit: "bytes",
					description: "Bytes held by each store-gateway cache.",
					targets:     []target{{`sum by (cache) (strata_storegateway_cache_size_bytes{` + jobMatcher + `})`, "{{cache}}"}}},
			}},
		},
	}
}

func compactor() dash {
	return dash{
		uid:         "strata-compactor",
		title:       "Strata / Compactor",
		description: "Compaction and cleanup passes, blocks merged and deleted.",
		rows: []row{
			{title: "Passes", panels: []panel{
				{title: "Passes by kind", unit: "short",
					description: "Compaction and cleanup passes started per second, and failed ones.",
					targets: []target{
						{`sum by (pass) (rate(strata_compactor_runs_total{` + jobMatcher + `}[$__rate_interval]))`, "{{pass}}"},
						{`sum by (pass) (rate(strata_compactor_runs_failed_total{` + jobMatcher + `}[$__rate_interval]))`, "{{pass}} failed"},
					}},
				{title: "Time since last successful pass", unit: "s",
					description: "Seconds since the last pass without failures, by kind.",
					targets:     []target{{`time() - max by (pass) (strata_compactor_last_successful_run_timestamp_seconds{` + jobMatcher + `})`, "{{pass}}"}}},
			}},
			{title: "Blocks", panels: []panel{
				{title: "Compactions", unit: "short",
					description: "Groups of blocks merged per second, and the blocks that went into them.",
					targets: []target{
						{`sum(rate(strata_compactor_compactions_total{` + jobMatcher + `}[$__rate_interval]))`, "compactions"},
						{`sum(rate(strata_compactor_blocks_compacted_total{` + jobMatcher + `}[$__rate_interval]))`, "blocks compacted"},
					}},
				{title: "Blocks deleted", unit: "short",
					description: "Blocks deleted from the bucket per second (past the deletion delay, or abandoned uploads).",
					targets:     []target{{`sum(rate(strata_compactor_blocks_deleted_total{` + jobMatcher + `}[$__rate_interval]))`, "deleted"}}},
				{title: "Blocks marked for deletion", unit: "short",
					description: "Blocks marked for deletion per second, by reason: replaced by a compacted block, or past the tenant's retention.",
					targets:     []target{{`sum by (reason) (rate(strata_compactor_blocks_marked_for_deletion_total{` + jobMatcher + `}[$__rate_interval]))`, "{{reason}}"}}},
			}},
		},
	}
}

func rulerAlertmanager() dash {
	return dash{
		uid:         "strata-ruler-alertmanager",
		title:       "Strata / Ruler and Alertmanager",
		description: "Tenants' rule evaluation and their Alertmanagers' notifications.",
		rows: []row{
			{title: "Ruler", panels: []panel{
				{title: "Rule evaluations", unit: "short",
					description: "Rules evaluated per second, and evaluations that failed.",
					targets: []target{
						{`sum(rate(strata_ruler_evaluations_total{` + jobMatcher + `}[$__rate_interval]))`, "evaluations"},
						{`sum(rate(strata_ruler_evaluation_failures_total{` + jobMatcher + `}[$__rate_interval]))`, "failures"},
					}},
				{title: "Group evaluation latency", unit: "s",
					description: "99th percentile of the time to evaluate a rule group.",
					targets:     []target{{`histogram_quantile(0.99, sum by (le) (rate(strata_ruler_group_evaluation_duration_seconds_bucket{` + jobMatcher + `}[$__rate_interval])))`, "p99"}}},
				{title: "Missed iterations", unit: "short",
					description: "Group evaluations skipped per second because the previous one was still running.",
					targets:     []target{{`sum by (tenant) (rate(strata_ruler_group_iterations_missed_total{` + jobMatcher + `}[$__rate_interval]))`, "{{tenant}}"}}},
				{title: "Rule groups loaded", unit: "short",
					description: "Rule groups the rulers evaluate.",
					targets:     []target{{`sum(strata_ruler_rule_groups_loaded{` + jobMatcher + `})`, "groups"}}},
				{title: "Ruler syncs", unit: "short",
					description: "Syncs of the rule store per second, by result.",
					targets:     []target{{`sum by (result) (rate(strata_ruler_syncs_total{` + jobMatcher + `}[$__rate_interval]))`, "{{result}}"}}},
			}},
			{title: "Alertmanager", panels: []panel{
				{title: "Alerts received", unit: "short",
					description: "Alerts received per second from the rulers, by status, and invalid ones.",
					targets: []target{
						{`sum by (status) (rate(strata_alertmanager_alerts_received_total{` + jobMatcher + `}[$__rate_interval]))`, "{{status}}"},
						{`sum(rate(strata_alertmanager_alerts_invalid_total{` + jobMatcher + `}[$__rate_interval]))`, "invalid"},
					}},
				{title: "Notifications", unit: "short",
					description: "Notifications sent per second by integration, and failed ones.",
					targets: []target{
						{`sum by (integration) (rate(strata_alertmanager_notifications_total{` + jobMatcher + `}[$__rate_interval]))`, "{{integration}}"},
						{`sum by (integration) (rate(strata_alertmanager_notifications_failed_total{` + jobMatcher + `}[$__rate_interval]))`, "{{integration}} failed"},
					}},
				{title: "Alerts and silences", unit: "short",
					description: "Alerts by state and silences by state, over all tenants.",
					targets: []target{
						{`sum by (state) (strata_alertmanager_alerts{` + jobMatcher + `})`, "alerts {{state}}"},
						{`sum by (state) (strata_alertmanager_silences{` + jobMatcher + `})`, "silences {{state}}"},
					}},
				{title: "Alertmanager tenants", unit: "short",
					description: "Tenants with an Alertmanager, by whether their configuration is their own or the fallback.",
					targets:     []target{{`max by (config) (strata_alertmanager_tenants{` + jobMatcher + `})`, "{{config}}"}}},
				{title: "Configuration syncs", unit: "short",
					description: "Syncs of tenants' configurations per second by result, and tenants whose last configuration failed to apply.",
					targets: []target{
						{`sum by (result) (rate(strata_alertmanager_config_syncs_total{` + jobMatcher + `}[$__rate_interval]))`, "{{result}}"},
						{`sum(1 - strata_alertmanager_config_last_apply_successful{` + jobMatcher + `})`, "tenants failing"},
					}},
				{title: "Alertmanager API latency", unit: "s",
					description: "99th percentile of Alertmanager API requests, by handler.",
					targets:     []target{{`histogram_quantile(0.99, sum by (le, handler) (rate(strata_alertmanager_http_request_duration_seconds_bucket{` + jobMatcher + `}[$__rate_interval])))`, "{{handler}}"}}},
			}},
		},
	}
}

func tenants() dash {
	const tenantMatchers = `job=~"$job", user=~"$tenant"`
	return dash{
		uid:            "strata-tenants",
		title:          "Strata / Tenants and limits",
		description:    "Per-tenant load and the limits that apply to it; pick tenants with $tenant.",
		tenantVariable: true,
		rows: []row{
			{title: "Writes", panels: []panel{
				{title: "Samples received by tenant", unit: "short",
					description: "Samples per second accepted for each tenant (the 10 largest).",
					targets:     []target{{`topk(10, sum by (user) (rate(strata_distributor_received_samples_total{` + tenantMatchers + `}[$__rate_interval])))`, "{{user}}"}}},
				{title: "Samples discarded by tenant and reason", unit: "short",
					description: "Samples per second refused for each tenant, by the limit or validation rule that refused them.",
					targets:     []target{{`sum by (user, reason) (rate(strata_discarded_samples_total{` + tenantMatchers + `}[$__rate_interval]))`, "{{user}} {{reason}}"}}},
				{title: "Ingestion rate against its limit", unit: "percentunit",
					description: "Each tenant's received samples per second, over all distributors, as a share of its ingestion_rate limit: its override, or the default for tenants without one (none where the limit is 0, no limit).",
					targets: []target{
						{`sum by (user) (rate(strata_distributor_received_samples_total{` + tenantMatchers + `}[$__rate_interval])) / on (user) max by (user) (strata_limits_overrides{` + tenantMatchers + `, limit_name="ingestion_rate"} > 0)`, "{{user}}"},
						{`(sum by (user) (rate(strata_distributor_received_samples_total{` + tenantMatchers + `}[$__rate_interval])) unless on (user) strata_limits_overrides{` + jobMatcher + `, limit_name="ingestion_rate"}) / scalar(max(strata_limits_defaults{` + jobMatcher + `, limit_name="ingestion_rate"}) > 0)`, "{{user}} (default limit)"},
					}},
			}},
			{title: "Series", panels: []panel{
				{title: "Active series by tenant", unit: "short",
					description: "Series that received a sample recently, per tenant, summed over ingesters (so counted once per replica).",
					targets:     []target{{`topk(10, sum by (user) (strata_ingester_active_series{` + tenantMatchers + `}))`, "{{user}}"}}},
				{title: "In-memory series by tenant", unit: "short",
					description: "Series in the ingesters' heads per tenant, summed over ingesters.",
					targets:     []target{{`topk(10, sum by (user) (strata_ingester_prometheus_tsdb_head_series{` + tenantMatchers + `}))`, "{{user}}"}}},
				{title: "In-memory series per series limit", unit: "short",
					description: "Each tenant's in-memory series summed over ingesters, divided by its max_global_series_per_user override. Each series is held by replication-factor ingesters, and each ingester allows its share of the limit times the replication factor: the tenant is at its limit when this reaches the replication factor (1 in a single binary, 3 by default in a cluster).",
					targets:     []target{{`sum by (user) (strata_ingester_prometheus_tsdb_head_series{` + tenantMatchers + `}) / on (user) max by (user) (strata_limits_overrides{` + tenantMatchers + `, limit_name="max_global_series_per_user"} > 0)`, "{{user}}"}}},
			}},
			{title: "Limits", panels: []panel{
				{title: "Overridden limits", unit: "short",
					description: "The per-tenant overrides of the runtime configuration, by limit.",
					targets:     []target{{`max by (user, limit_name) (strata_limits_overrides{` + tenantMatchers + `})`, "{{user}} {{limit_name}}"}}},
				{title: "Default limits", unit: "short",
					description: "The limits that apply to tenants without an override.",
					targets:     []target{{`max by (limit_name) (strata_limits_defaults{` + jobMatcher + `})`, "{{limit_name}}"}}},
				{title: "Rule evaluations by tenant", unit: "short",
					description: "Rules evaluated per second for each tenant.",
					targets:     []target{{`sum by (tenant) (rate(strata_ruler_evaluations_total{` + jobMatcher + `, tenant=~"$tenant"}[$__rate_interval]))`, "{{tenant}}"}}},
			}},
		},
	}
}
