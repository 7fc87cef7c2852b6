package queryui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
)

// dist is the built page: web/query-ui/build.mjs writes it and it is committed, so building Strata needs
// no Node.js. manifest.json in it records what it was built from; it is not served.
//
//go:embed dist
var dist embed.FS

// contentTypes are the types of the files the build writes. A file of another kind fails loadAssets
// (and so the package's tests) rather than being served with a guessed type.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
}

// asset is one file to serve, with its validator and, made on first use, its gzip encoding.
type asset struct {
	content     []byte
	contentType string
	etag        string

	gzipOnce sync.Once
	gzipped  []byte // nil when gzip does not make the file smaller
}

// gzipContent returns the file gzipped, or nil when that saves nothing. It compresses on first use
// rather than at startup: a process that never serves the page never pays for it.
func (a *asset) gzipContent() []byte {
	a.gzipOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid, so no error
		_, _ = zw.Write(a.content)                               // writes to a bytes.Buffer do not fail
		_ = zw.Close()
		if buf.Len() < len(a.content) {
			a.gzipped = buf.Bytes()
		}
	})
	return a.gzipped
}

// pageAssets are the page and its assets by path inside dist ("index.html", "assets/app-XXXX.js").
type pageAssets map[string]*asset

// loadAssets reads the embedded build. The page must be there, and every asset it names must be too.
func loadAssets(fsys fs.FS) (pageAssets, error) {
	assets := pageAssets{}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "manifest.json" {
			return err
		}
		contentType, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("%s: no content type for files named *%s", name, path.Ext(name))
		}
		content, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(content)
		assets[name] = &asset{content: content, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	page, ok := assets[pageFile]
	if !ok {
		return nil, fmt.Errorf("%s is missing", pageFile)
	}
	for _, ref := range assetRefs(page.content) {
		if _, ok := assets[ref]; !ok {
			return nil, fmt.Errorf("%s refers to %s, which is missing", pageFile, ref)
		}
	}
	return assets, nil
}

// assetRefs returns the assets the page refers to, as paths inside dist. The build writes them as
// "query/assets/<name>", relative to the page's URL.
func assetRefs(page []byte) []string {
	var refs []string
	for rest := string(page); ; {
		i := strings.Index(rest, `"`+assetURLPrefix)
		if i < 0 {
			return refs
		}
		rest = rest[i+1+len(assetURLPrefix):]
		end := strings.IndexByte(rest, '"')
		if end < 0 {
			return refs
		}
		refs = append(refs, assetDir+rest[:end])
		rest = rest[end:]
	}
}

const (
	pageFile       = "index.html"
	assetDir       = "assets/"
	assetURLPrefix = "query/" + assetDir
)

// embeddedAssets loads the embedded build once per process.
var embeddedAssets = sync.OnceValues(func() (pageAssets, error) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, err
	}
	return loadAssets(sub)
})
