package validation_test

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/validation"
)

func TestCSVList_TakesCommaSeparatedTextOrAList(t *testing.T) {
	var l validation.Limits
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	l.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"-distributor.otel-promote-resource-attributes= k8s.pod.name, ,cloud.region"}))
	require.Equal(t, validation.CSVList{"k8s.pod.name", "cloud.region"}, l.PromoteOTelResourceAttributes)
	require.Equal(t, "k8s.pod.name,cloud.region", fs.Lookup("distributor.otel-promote-resource-attributes").Value.String())

	for name, doc := range map[string]string{
		"text": `promote_otel_resource_attributes: "service.version, host.name"`,
		"list": "promote_otel_resource_attributes: [service.version, host.name]",
	} {
		t.Run(name, func(t *testing.T) {
			tenant := validation.DefaultLimits()
			require.NoError(t, yaml.Unmarshal([]byte(doc), &tenant))
			require.Equal(t, validation.CSVList{"service.version", "host.name"}, tenant.PromoteOTelResourceAttributes)
			out, err := yaml.Marshal(tenant)
			require.NoError(t, err)
			require.Contains(t, string(out), "promote_otel_resource_attributes: service.version,host.name\n")
		})
	}
	var bad validation.Limits
	require.ErrorContains(t, yaml.Unmarshal([]byte("promote_otel_resource_attributes: {a: b}"), &bad), "comma-separated text or a list")
}
