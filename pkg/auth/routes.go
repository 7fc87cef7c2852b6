package auth

import (
	"net/http"
	"path"
	"strings"
)

// rolePublic marks the paths anyone may call: readiness (Kubernetes probes carry no credential), the
// index page and the query UI's page, which hold no tenant data (the UI's queries need RoleRead).
const rolePublic Role = ""

// RequiredRole is the role a request for method and urlPath needs. A path not listed needs RoleAdmin, so
// a new endpoint is closed until it is placed here; so is a path that is not clean ("/a/../b"), which the
// router would otherwise resolve to another handler than the one judged here.
func RequiredRole(method, urlPath string) Role {
	if clean := path.Clean(urlPath); !strings.HasPrefix(urlPath, "/") || urlPath != clean && urlPath != clean+"/" {
		return RoleAdmin
	}
	switch {
	case urlPath == "/", urlPath == "/ready", urlPath == "/query", strings.HasPrefix(urlPath, "/query/"):
		return rolePublic
	case urlPath == "/api/v1/push", urlPath == "/otlp/v1/metrics", urlPath == "/api/v1/otlp/v1/metrics",
		strings.HasPrefix(urlPath, "/api/v1/upload/block/"):
		return RoleWrite
	case strings.HasPrefix(urlPath, "/prometheus/api/v1/admin/"):
		return RoleAdmin
	case urlPath == "/prometheus/config/v1/rules", strings.HasPrefix(urlPath, "/prometheus/config/v1/rules/"),
		urlPath == "/api/v1/alerts":
		return RoleRules
	case urlPath == "/alertmanager", strings.HasPrefix(urlPath, "/alertmanager/"):
		if method == http.MethodGet || method == http.MethodHead {
			return RoleRead
		}
		return RoleRules // silences
	case strings.HasPrefix(urlPath, "/prometheus/api/v1/"), urlPath == "/api/v1/user_limits":
		return RoleRead
	default:
		return RoleAdmin
	}
}
