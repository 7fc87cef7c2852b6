package validation_test

import (
	"flag"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/validation"
)

// defaultLimits returns the limits as the flags default them.
func defaultLimits(t testing.TB) *validation.Limits {
	t.Helper()
	var l validation.Limits
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	l.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	return &l
}

func TestLimits_RegisterFlagsDefaults(t *testing.T) {
	require.Equal(t, validation.Limits{
		MaxLabelNamesPerSeries: 30,
		MaxLabelNameLength:     1024,
		MaxLabelValueLength:    2048,
		CreationGracePeriod:    model.Duration(10 * time.Minute),
		MaxMetadataLength:      1024,
		HAClusterLabel:         "cluster",
		HAReplicaLabel:         "__replica__",

		IngestionRate:          10_000,
		IngestionBurstSize:     200_000,
		MaxGlobalSeriesPerUser: 150_000,

		MaxGlobalMetadataPerUser:   50_000,
		MaxGlobalMetadataPerMetric: 10,

		MaxQueryExpressionSizeBytes:  128 << 10,
		MaxSubquerySteps:             1_000_000,
		MaxFetchedSeriesPerQuery:     200_000,
		MaxFetchedChunkBytesPerQuery: 1 << 30,
		MaxFetchedExemplarsPerQuery:  1_000_000,
		MaxQueryParallelism:          14,
		MaxCacheFreshness:            model.Duration(10 * time.Minute),
		QueryShardingTotalShards:     16,

		CompactorBlockUploadValidationEnabled: true,

		RulerMaxRulesPerRuleGroup:   20,
		RulerMaxRuleGroupsPerTenant: 70,
		RulerEvaluationTimeout:      model.Duration(2 * time.Minute),

		AlertmanagerMaxConfigSizeBytes:             1 << 20,
		AlertmanagerMaxTemplatesCount:              100,
		AlertmanagerMaxAlertsCount:                 20_000,
		AlertmanagerMaxAlertsSizeBytes:             64 << 20,
		AlertmanagerMaxSilencesCount:               10_000,
		AlertmanagerMaxSilenceSizeBytes:            64 << 10,
		AlertmanagerMaxDispatcherAggregationGroups: 1000,
	}, *defaultLimits(t))
	require.NoError(t, defaultLimits(t).Validate())
}

func TestLimits_FlagsOverrideDefaults(t *testing.T) {
	var l validation.Limits
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	l.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{
		"-validation.max-label-names-per-series=40",
		"-validation.max-length-label-name=100",
		"-validation.max-length-label-value=200",
		"-validation.create-grace-period=1m",
		"-validation.max-metadata-length=300",
	}))
	want := validation.DefaultLimits()
	want.MaxLabelNamesPerSeries = 40
	want.MaxLabelNameLength = 100
	want.MaxLabelValueLength = 200
	want.CreationGracePeriod = model.Duration(time.Minute)
	want.MaxMetadataLength = 300
	require.Equal(t, want, l)
}

func TestLimits_Validate(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(*validation.Limits)
		wantErr string
	}{
		{name: "zero grace period is allowed", modify: func(l *validation.Limits) { l.CreationGracePeriod = 0 }},
		{name: "zero label names", modify: func(l *validation.Limits) { l.MaxLabelNamesPerSeries = 0 },
			wantErr: "-validation.max-label-names-per-series must be positive, got 0"},
		{name: "negative label name length", modify: func(l *validation.Limits) { l.MaxLabelNameLength = -1 },
			wantErr: "-validation.max-length-label-name must be positive, got -1"},
		{name: "zero label value length", modify: func(l *validation.Limits) { l.MaxLabelValueLength = 0 },
			wantErr: "-validation.max-length-label-value must be positive"},
		{name: "zero metadata length", modify: func(l *validation.Limits) { l.MaxMetadataLength = 0 },
			wantErr: "-validation.max-metadata-length must be positive"},
		{name: "zero ruler limits are no limit", modify: func(l *validation.Limits) {
			l.RulerMaxRulesPerRuleGroup, l.RulerMaxRuleGroupsPerTenant = 0, 0
		}},
		{name: "negative rules per rule group", modify: func(l *validation.Limits) { l.RulerMaxRulesPerRuleGroup = -1 },
			wantErr: "-ruler.max-rules-per-rule-group must not be negative, got -1"},
		{name: "negative rule groups per tenant", modify: func(l *validation.Limits) { l.RulerMaxRuleGroupsPerTenant = -1 },
			wantErr: "-ruler.max-rule-groups-per-tenant must not be negative, got -1"},
		{name: "zero alertmanager limits are no limit", modify: func(l *validation.Limits) {
			l.AlertmanagerMaxConfigSizeBytes, l.AlertmanagerMaxTemplatesCount, l.AlertmanagerMaxAlertsCount = 0, 0, 0
			l.AlertmanagerMaxSilencesCount, l.AlertmanagerMaxSilenceSizeBytes = 0, 0
			l.AlertmanagerMaxAlertsSizeBytes, l.AlertmanagerMaxDispatcherAggregationGroups = 0, 0
		}},
		{name: "negative alerts count", modify: func(l *validation.Limits) { l.AlertmanagerMaxAlertsCount = -1 },
			wantErr: "-alertmanager.max-alerts-count must not be negative, got -1"},
		{name: "negative config size", modify: func(l *validation.Limits) { l.AlertmanagerMaxConfigSizeBytes = -1 },
			wantErr: "-alertmanager.max-config-size-bytes must not be negative"},
		{name: "negative alerts size", modify: func(l *validation.Limits) { l.AlertmanagerMaxAlertsSizeBytes = -1 },
			wantErr: "-alertmanager.max-alerts-size-bytes must not be negative"},
		{name: "negative aggregation groups", modify: func(l *validation.Limits) { l.AlertmanagerMaxDispatcherAggregationGroups = -1 },
			wantErr: "-alertmanager.max-dispatcher-aggregation-groups must not be negative"},
		{name: "negative silence size", modify: func(l *validation.Limits) { l.AlertmanagerMaxSilenceSizeBytes = -1 },
			wantErr: "-alertmanager.max-silence-size-bytes must not be negative"},
		{name: "negative grace period", modify: func(l *validation.Limits) { l.CreationGracePeriod = model.Duration(-time.Second) },
			wantErr: "-validation.create-grace-period must not be negative, got -1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := defaultLimits(t)
			tc.modify(l)
			err := l.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestLimits_EveryFieldHasAKeyAndARegisteredFlag(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	new(validation.Limits).RegisterFlags(fs)
	seen := map[string]bool{}
	for _, key := range validation.LimitKeys() {
		require.NotEmpty(t, key)
		require.False(t, seen[key], "key %q twice", key)
		seen[key] = true
		name := validation.FlagOf(key)
		require.NotNil(t, fs.Lookup(name), "limit %q names flag %q, which is not registered", key, name)
		back, ok := validation.KeyOfFlag(name)
		require.True(t, ok)
		require.Equal(t, key, back)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	require.Equal(t, len(seen), n, "every limit flag belongs to a field")
}

func TestLimits_UnmarshalYAMLOverridesOnlyTheGivenKeys(t *testing.T) {
	l := *defaultLimits(t)
	require.NoError(t, yaml.Unmarshal([]byte("max_label_names_per_series: 5\nmax_query_lookback: 7d\n"), &l))
	want := *defaultLimits(t)
	want.MaxLabelNamesPerSeries = 5
	want.MaxQueryLookback = model.Duration(7 * 24 * time.Hour)
	require.Equal(t, want, l)

	err := yaml.Unmarshal([]byte("max_label_names_per_serie: 5\n"), &l)
	require.ErrorContains(t, err, `unknown limit "max_label_names_per_serie"`)
	err = yaml.Unmarshal([]byte("max_label_names_per_series: many\n"), &l)
	require.Error(t, err)
}

func TestLimitError_NamesTheLimitItsIDAndHowToChangeIt(t *testing.T) {
	err := validation.NewLimitError("max_subquery_steps", "the subquery is evaluated at %d steps, more than the limit of %d", 20, 10)
	require.Equal(t, "the subquery is evaluated at 20 steps, more than the limit of 10 (err-strata-max-subquery-steps). "+
		"To adjust the related per-tenant limit, configure -querier.max-subquery-steps, or max_subquery_steps in the tenant's runtime overrides",
		err.Error())
}

type tenantLimitsMap map[string]*validation.Limits

func (m tenantLimitsMap) ByTenant(tenant string) *validation.Limits  { return m[tenant] }
func (m tenantLimitsMap) AllByTenant() map[string]*validation.Limits { return m }

func TestOverrides_RulerLimitsFollowTheTenantsOverrides(t *testing.T) {
	custom := validation.DefaultLimits()
	custom.RulerMaxRulesPerRuleGroup = 5
	custom.RulerMaxRuleGroupsPerTenant = 0
	o := validation.NewOverrides(validation.DefaultLimits(), tenantLimitsMap{"big": &custom})
	require.Equal(t, 20, o.RulerMaxRulesPerRuleGroup("other"))
	require.Equal(t, 70, o.RulerMaxRuleGroupsPerTenant("other"))
	require.Equal(t, 5, o.RulerMaxRulesPerRuleGroup("big"))
	require.Equal(t, 0, o.RulerMaxRuleGroupsPerTenant("big"))
}

func TestOverrides_AlertmanagerLimitsFollowTheTenantsOverrides(t *testing.T) {
	custom := validation.DefaultLimits()
	custom.AlertmanagerMaxConfigSizeBytes = 1
	custom.AlertmanagerMaxTemplatesCount = 2
	custom.AlertmanagerMaxAlertsCount = 3
	custom.AlertmanagerMaxSilencesCount = 4
	custom.AlertmanagerMaxSilenceSizeBytes = 5
	custom.AlertmanagerMaxAlertsSizeBytes = 6
	custom.AlertmanagerMaxDispatcherAggregationGroups = 7
	o := validation.NewOverrides(validation.DefaultLimits(), tenantLimitsMap{"big": &custom})
	require.Equal(t, []int{1 << 20, 100, 20_000, 10_000, 64 << 10, 64 << 20, 1000}, alertmanagerLimits(o, "other"))
	require.Equal(t, []int{1, 2, 3, 4, 5, 6, 7}, alertmanagerLimits(o, "big"))
}

func alertmanagerLimits(o *validation.Overrides, tenant string) []int {
	return []int{
		o.AlertmanagerMaxConfigSizeBytes(tenant), o.AlertmanagerMaxTemplatesCount(tenant), o.AlertmanagerMaxAlertsCount(tenant),
		o.AlertmanagerMaxSilencesCount(tenant), o.AlertmanagerMaxSilenceSizeBytes(tenant),
		o.AlertmanagerMaxAlertsSizeBytes(tenant), o.AlertmanagerMaxDispatcherAggregationGroups(tenant),
	}
}
