package main

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// dash is one dashboard: rows of time-series panels over Strata's own metrics, with a data source and a
// job variable (and a tenant variable where it says so).
type dash struct {
	uid, title, description string
	// tenantVariable adds $tenant: the values of the user label of the received-samples counter.
	tenantVariable bool
	rows           []row
}

type row struct {
	title  string
	panels []panel
}

type panel struct {
	title, description, unit string
	targets                  []target
}

type target struct{ expr, legend string }

// Panels are laid out three to a grid line of Grafana's 24 columns.
const (
	panelWidth  = 8
	panelHeight = 8
)

// datasource is every panel's and variable's data source: the dashboard's $datasource variable, so that
// the dashboards work with whatever Prometheus-compatible source (Strata itself included) holds the metrics.
var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// builder uses the classic dashboard schema, which the SDK marks deprecated for its v2 one: every current
// Grafana imports and provisions the classic JSON from files, while v2 needs Grafana 12 with its new
// dashboard features turned on.
func (d dash) builder() *dashboard.DashboardBuilder { //nolint:staticcheck // see above
	b := dashboard.NewDashboardBuilder(d.title) //nolint:staticcheck // the classic schema, see above
	b.Uid(d.uid).
		Description(d.description).
		Tags([]string{"strata"}).
		Editable().
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(dashboard.NewDashboardLinkBuilder("Strata dashboards").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"strata"}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true)).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus")).
		WithVariable(queryVariable("job", "Job", "label_values(strata_build_info, job)"))
	if d.tenantVariable {
		b.WithVariable(queryVariable("tenant", "Tenant", `label_values(strata_distributor_received_samples_total{job=~"$job"}, user)`))
	}
	var id uint32
	y := uint32(0)
	for _, r := range d.rows {
		id++
		b.WithRow(dashboard.NewRowBuilder(r.title).Id(id).GridPos(dashboard.GridPos{X: 0, Y: y, W: 24, H: 1}))
		y++
		for i, p := range r.panels {
			id++
			x := uint32(i%3) * panelWidth
			if i > 0 && i%3 == 0 {
				y += panelHeight
			}
			b.WithPanel(p.builder(id, x, y))
		}
		y += panelHeight
	}
	return b
}

// queryVariable is a multi-value variable over a label's values, "All" matching any value.
func queryVariable(name, label, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".+").
		Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: cog.ToPtr("All")}, Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("$__all")}})
}

func (p panel) builder(id, x, y uint32) *timeseries.PanelBuilder {
	b := timeseries.NewPanelBuilder().
		Id(id).
		Title(p.title).
		Description(p.description).
		Datasource(datasource).
		GridPos(dashboard.GridPos{X: x, Y: y, W: panelWidth, H: panelHeight}).
		Unit(p.unit).
		FillOpacity(10).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true))
	if p.unit == "percentunit" {
		b = b.Min(0).Max(1)
	}
	for i, t := range p.targets {
		b = b.WithTarget(prometheus.NewDataqueryBuilder().
			RefId(string(rune('A' + i))).
			Datasource(datasource).
			Expr(t.expr).
			LegendFormat(t.legend).
			Range())
	}
	return b
}
