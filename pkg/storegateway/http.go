package storegateway

import (
	"cmp"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"
)

// TenantBlocks is one tenant's loaded blocks, as listed by Tenants.
type TenantBlocks struct {
	Tenant string      `json:"tenant"`
	Blocks []BlockInfo `json:"blocks"`
}

// BlockInfo describes a loaded block.
type BlockInfo struct {
	ID string `json:"id"`
	// MinTime and MaxTime are the block's time range in unix milliseconds, MaxTime exclusive.
	MinTime int64 `json:"min_time"`
	MaxTime int64 `json:"max_time"`
	// Series and Samples come from the block's meta.json.
	Series          uint64 `json:"series"`
	Samples         uint64 `json:"samples"`
	CompactionLevel int    `json:"compaction_level"`
}

// Tenants lists the loaded blocks by tenant, tenants sorted by ID and blocks by time.
func (s *StoreGateway) Tenants() []TenantBlocks {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]TenantBlocks, 0, len(s.blocks))
	for t, blocks := range s.blocks {
		tb := TenantBlocks{Tenant: t, Blocks: make([]BlockInfo, 0, len(blocks))}
		for _, b := range blocks {
			tb.Blocks = append(tb.Blocks, BlockInfo{
				ID:              b.id().String(),
				MinTime:         b.meta.MinTime,
				MaxTime:         b.meta.MaxTime,
				Series:          b.meta.Stats.NumSeries,
				Samples:         b.meta.Stats.NumSamples,
				CompactionLevel: b.meta.Compaction.Level,
			})
		}
		slices.SortFunc(tb.Blocks, func(a, b BlockInfo) int {
			if c := cmp.Compare(a.MinTime, b.MinTime); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		out = append(out, tb)
	}
	slices.SortFunc(out, func(a, b TenantBlocks) int { return cmp.Compare(a.Tenant, b.Tenant) })
	return out
}

var tenantsPage = template.Must(template.New("tenants").Funcs(template.FuncMap{
	"time": func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) },
}).Parse(`<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Store-gateway tenants</title>
<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}</style>
</head>
<body>
<h1>Store-gateway tenants</h1>
{{if not .}}<p>No blocks loaded.</p>{{end}}
{{range .}}<h2>{{.Tenant}}</h2>
<table>
<tr><th>Block</th><th>Min time</th><th>Max time</th><th>Series</th><th>Samples</th><th>Compaction level</th></tr>
{{range .Blocks}}<tr><td>{{.ID}}</td><td>{{time .MinTime}}</td><td>{{time .MaxTime}}</td><td>{{.Series}}</td><td>{{.Samples}}</td><td>{{.CompactionLevel}}</td></tr>
{{end}}</table>
{{end}}
</body>
</html>
`))

// TenantsHandler serves /store-gateway/tenants: the loaded blocks of each tenant as an HTML page, or as
// JSON when the request accepts application/json.
func (s *StoreGateway) TenantsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		tenants := s.Tenants()
		if strings.Contains(req.Header.Get("Accept"), "application/json") {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(tenants)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := tenantsPage.Execute(w, tenants); err != nil {
			s.logger.Warn("render tenants page", "err", err)
		}
	})
}
