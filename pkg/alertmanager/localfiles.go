package alertmanager

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/prometheus/sigv4"
)

// errLocalSettings is matched by the errors of checkNoLocalSettings.
var errLocalSettings = errors.New("settings that use the Alertmanager's own files or credentials are not allowed in a tenant's configuration")

// maxReportedLocalSettings bounds how many offending settings an error names; one is enough to act on,
// a few show whether there are more.
const maxReportedLocalSettings = 5

// checkNoLocalSettings walks a parsed configuration and reports the settings that would make Strata
// read its own disk or use its own identity on behalf of a tenant: every "*_file" setting (password_file,
// bearer_token_file, api_key_file, url_file, TLS ca_file/cert_file/key_file...), header values read
// from "files", secret-manager "*_ref" references, and SNS sigv4 settings that fall back to the
// process' AWS credentials. Matching on YAML keys rather than on known types catches the settings of
// integrations added to Alertmanager later without a change here.
func checkNoLocalSettings(cfg any) error {
	var found []string
	walkConfig(reflect.ValueOf(cfg), "", 0, func(path, key string, v reflect.Value) {
		if forbiddenKey(key) && !v.IsZero() {
			found = append(found, path+" is set")
		}
		if v.Type() == reflect.TypeFor[sigv4.SigV4Config]() {
			found = append(found, checkSigV4(path, v.Interface().(sigv4.SigV4Config))...)
		}
	})
	if len(found) == 0 {
		return nil
	}
	more := ""
	if len(found) > maxReportedLocalSettings {
		more = fmt.Sprintf(" (and %d more)", len(found)-maxReportedLocalSettings)
		found = found[:maxReportedLocalSettings]
	}
	return fmt.Errorf("%w: %s%s; put secrets and certificates in the configuration itself (password, credentials, ca, cert, key, ...)",
		errLocalSettings, strings.Join(found, ", "), more)
}

func forbiddenKey(key string) bool {
	return strings.HasSuffix(key, "_file") || strings.HasSuffix(key, "_ref") || key == "files"
}

// checkSigV4 rejects SNS signing settings that take credentials from the process: a profile (read from
// the AWS files of the machine) or no access key (the environment or the instance's role).
func checkSigV4(path string, c sigv4.SigV4Config) []string {
	var found []string
	if c.Profile != "" {
		found = append(found, path+".profile is set")
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		found = append(found, path+" has no access_key and secret_key (Strata's own AWS credentials would be used)")
	}
	return found
}

// maxConfigDepth bounds the walk; Alertmanager configurations are trees a few levels deep, and the
// bound keeps a pointer cycle in some future type from looping forever.
const maxConfigDepth = 32

// walkConfig calls visit for every value reachable through exported fields, slices and maps of v, with
// its path in YAML terms ("receivers[0].webhook_configs[0].http_config") and the YAML key of the field
// it came from ("" for slice and map elements).
func walkConfig(v reflect.Value, path string, depth int, visit func(path, key string, v reflect.Value)) {
	if depth > maxConfigDepth {
		return
	}
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			key, inline := yamlKey(f)
			if key == "-" {
				continue
			}
			fv := v.Field(i)
			if inline || key == "" {
				walkConfig(fv, path, depth+1, visit)
				continue
			}
			p := key
			if path != "" {
				p = path + "." + key
			}
			visit(p, key, fv)
			walkConfig(fv, p, depth+1, visit)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkConfig(v.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1, visit)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			walkConfig(iter.Value(), fmt.Sprintf("%s[%v]", path, iter.Key()), depth+1, visit)
		}
	}
}

// yamlKey returns the YAML key of a field and whether it is inlined into its parent.
func yamlKey(f reflect.StructField) (key string, inline bool) {
	tag, ok := f.Tag.Lookup("yaml")
	if !ok {
		return "", false
	}
	name, opts, _ := strings.Cut(tag, ",")
	return name, strings.Contains(","+opts+",", ",inline,")
}
