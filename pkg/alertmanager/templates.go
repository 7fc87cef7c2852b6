package alertmanager

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"
)

// maxTemplateNameLength is the longest template file name, in bytes: what filesystems allow for one
// path segment.
const maxTemplateNameLength = 255

// errInvalidTemplateName is matched by the errors of checkTemplateName.
var errInvalidTemplateName = errors.New("invalid template file name")

// checkTemplateName accepts a template file name, or with pattern a glob of the configuration's
// templates field, only when it is one plain path segment: templates are written to and read from the
// tenant's own directory, and a separator or ".." would reach outside it.
func checkTemplateName(name string, pattern bool) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: it is empty", errInvalidTemplateName)
	case len(name) > maxTemplateNameLength:
		return fmt.Errorf("%w: %.40q... is %d bytes, at most %d are allowed", errInvalidTemplateName, name, len(name), maxTemplateNameLength)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q", errInvalidTemplateName, name)
	case strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("%w: %q must be a plain file name, without path separators", errInvalidTemplateName, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %q is not valid UTF-8", errInvalidTemplateName, name)
	}
	if pattern {
		if _, err := filepath.Match(name, ""); err != nil {
			return fmt.Errorf("%w: %q: %w", errInvalidTemplateName, name, err)
		}
	}
	return nil
}

// writeTemplates makes dir hold exactly files, each named by its key.
func writeTemplates(dir string, files map[string]string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear template directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create template directory: %w", err)
	}
	for name, content := range files {
		if err := checkTemplateName(name, false); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("write template %q: %w", name, err)
		}
	}
	return nil
}

// loadTemplates parses Alertmanager's default templates and then the files of dir that the
// configuration's templates patterns match, as Alertmanager does with the globs of its configuration
// file; template files that no pattern names are not loaded. Links in notifications use externalURL.
func loadTemplates(dir string, patterns []string, externalURL *url.URL) (*template.Template, error) {
	globs := make([]string, 0, len(patterns))
	for _, p := range patterns {
		if err := checkTemplateName(p, true); err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		globs = append(globs, filepath.Join(dir, p))
	}
	tmpl, err := template.FromGlobs(globs)
	if err != nil {
		// The error names the tenant's directory; the tenant only knows its file names.
		return nil, fmt.Errorf("parse templates: %s", strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
	}
	tmpl.ExternalURL = externalURL
	return tmpl, nil
}
