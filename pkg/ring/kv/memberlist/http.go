package memberlist

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"

	hashicorp "github.com/hashicorp/memberlist"
)

// statusPage is what /memberlist shows, in HTML or JSON.
type statusPage struct {
	Self    string         `json:"self"`
	Members []memberStatus `json:"members"`
	Keys    []keyStatus    `json:"keys"`
}

type memberStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	State   string `json:"state"`
}

type keyStatus struct {
	Key     string `json:"key"`
	Codec   string `json:"codec"`
	Version uint64 `json:"version"`
	Size    int    `json:"size"`
	// Value is the encoded value when the codec writes JSON, and absent otherwise.
	Value json.RawMessage `json:"value,omitempty"`
}

var memberStates = map[hashicorp.NodeStateType]string{
	hashicorp.StateAlive:   "alive",
	hashicorp.StateSuspect: "suspect",
	hashicorp.StateDead:    "dead",
	hashicorp.StateLeft:    "left",
}

func (k *KV) status() statusPage {
	page := statusPage{Self: k.nodeName, Members: []memberStatus{}, Keys: []keyStatus{}}
	if ml := k.ml.Load(); ml != nil {
		for _, n := range ml.Members() {
			page.Members = append(page.Members, memberStatus{Name: n.Name, Address: n.Address(), State: memberStates[n.State]})
		}
		slices.SortFunc(page.Members, func(a, b memberStatus) int { return strings.Compare(a.Name, b.Name) })
	}
	for _, v := range k.encodeAll() {
		ks := keyStatus{Key: v.key, Codec: v.codec, Version: v.version, Size: len(v.data)}
		if json.Valid(v.data) {
			ks.Value = v.data
		}
		page.Keys = append(page.Keys, ks)
	}
	return page
}

// ServeHTTP serves the /memberlist status page: members and stored keys, as HTML, or as JSON when the
// request accepts application/json.
func (k *KV) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	page := k.status()
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(page)
		return
	}
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, page); err != nil {
		http.Error(w, "render memberlist page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// indentJSON pretty-prints a JSON value for the HTML page.
func indentJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

var statusTemplate = template.Must(template.New("memberlist").Funcs(template.FuncMap{"indent": indentJSON}).Parse(`<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Memberlist</title></head>
<body>
<h1>Memberlist</h1>
<p>This member: {{.Self}}</p>
<h2>Members</h2>
<table border="1" cellpadding="4">
<tr><th>Name</th><th>Address</th><th>State</th></tr>
{{range .Members}}<tr><td>{{.Name}}</td><td>{{.Address}}</td><td>{{.State}}</td></tr>
{{else}}<tr><td colspan="3">not started</td></tr>
{{end}}</table>
<h2>Keys</h2>
<table border="1" cellpadding="4">
<tr><th>Key</th><th>Codec</th><th>Version</th><th>Size (bytes)</th><th>Value</th></tr>
{{range .Keys}}<tr><td>{{.Key}}</td><td>{{.Codec}}</td><td>{{.Version}}</td><td>{{.Size}}</td><td>{{if .Value}}<pre>{{indent .Value}}</pre>{{else}}(not JSON){{end}}</td></tr>
{{else}}<tr><td colspan="5">no keys</td></tr>
{{end}}</table>
</body>
</html>
`))
