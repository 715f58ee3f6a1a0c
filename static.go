package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strings"
)

// The web page's files are read once at start-up. Each is gzipped once
// (when that saves bytes) and gets a strong ETag. index.html is rewritten
// to load everything else from /v/VERSION/…, where VERSION is a hash of
// every file: those URLs never change content, so browsers keep them for
// a year without asking (immutable), and a new build is a new VERSION.
// index.html itself, the one file that names VERSION, is revalidated on
// every load (no-cache with its ETag: a 304 costs a few hundred bytes).
// It also preloads every module, so a slow network fetches them at once
// instead of one import level per round trip.

// staticAssetMaxAge is how long, in seconds, browsers keep a versioned
// file (one year; its URL changes with its content).
const staticAssetMaxAge = 365 * 24 * 3600

// staticFile is one file of the page, ready to serve.
type staticFile struct {
	body   []byte
	gz     []byte // nil when gzip does not make it smaller
	etag   string // of body; the gzipped one adds -gz
	ctype  string
	hashed bool // served under /v/VERSION/ (everything but index.html)
}

// staticSite serves the page's files; it never changes after start-up.
type staticSite struct {
	files   map[string]*staticFile // by path, without the leading slash
	version string
}

// newStaticHandler prepares fsys's files to be served compressed and
// cached. Should reading them fail, it falls back to a plain file server.
func newStaticHandler(fsys fs.FS) http.Handler {
	site, err := loadStaticSite(fsys)
	if err != nil {
		return http.FileServerFS(fsys)
	}
	return site
}

func loadStaticSite(fsys fs.FS) (*staticSite, error) {
	site := &staticSite{files: map[string]*staticFile{}}
	sum := sha256.New()
	var names []string
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the page's files: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		fmt.Fprintf(sum, "%s\x00%d\x00", name, len(body))
		sum.Write(body)
		site.files[name] = &staticFile{body: body, hashed: name != "index.html"}
	}
	site.version = hex.EncodeToString(sum.Sum(nil))[:12]
	if index := site.files["index.html"]; index != nil {
		index.body = site.rewriteIndex(index.body)
	}
	for name, f := range site.files {
		ctype := mime.TypeByExtension(path.Ext(name))
		if path.Ext(name) == ".webmanifest" {
			ctype = "application/manifest+json"
		}
		if ctype == "" {
			ctype = http.DetectContentType(f.body)
		}
		f.ctype = ctype
		h := sha256.Sum256(f.body)
		f.etag = `"` + hex.EncodeToString(h[:8]) + `"`
		if f.gz, err = gzipped(f.body); err != nil {
			return nil, fmt.Errorf("compress %s: %w", name, err)
		}
	}
	return site, nil
}

// localRef matches href="…" and src="…" attributes whose value is a
// relative path (no scheme, no leading slash or #).
var localRef = regexp.MustCompile(`(href|src)="([A-Za-z0-9_][^":#?]*)"`)

// rewriteIndex points index.html's references to the page's own files at
// /v/VERSION/, and preloads every JavaScript module.
func (s *staticSite) rewriteIndex(body []byte) []byte {
	prefix := "/v/" + s.version + "/"
	out := localRef.ReplaceAllFunc(body, func(m []byte) []byte {
		sub := localRef.FindSubmatch(m)
		if _, ok := s.files[string(sub[2])]; !ok {
			return m
		}
		return []byte(fmt.Sprintf(`%s="%s%s"`, sub[1], prefix, sub[2]))
	})
	var modules []string
	for name := range s.files {
		if strings.HasPrefix(name, "js/") && strings.HasSuffix(name, ".js") {
			modules = append(modules, name)
		}
	}
	sort.Strings(modules)
	var links strings.Builder
	for _, name := range modules {
		fmt.Fprintf(&links, "<link rel=\"modulepreload\" href=\"%s%s\">\n", prefix, name)
	}
	return bytes.Replace(out, []byte("</head>"), []byte(links.String()+"</head>"), 1)
}

func gzipped(body []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	// Worth it only when it saves a packet's worth or a tenth.
	if saved := len(body) - buf.Len(); saved < 1024 && saved*10 < len(body) {
		return nil, nil
	}
	return buf.Bytes(), nil
}

func (s *staticSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	immutable := false
	if rest, ok := strings.CutPrefix(name, "v/"); ok {
		version, file, _ := strings.Cut(rest, "/")
		// Another build's URL gets this build's file, revalidated.
		immutable = version == s.version
		name = file
	}
	if name == "" {
		name = "index.html"
	}
	f := s.files[name]
	if f == nil || (immutable && !f.hashed) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	if immutable {
		h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d, immutable", staticAssetMaxAge))
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	body, etag := f.body, f.etag
	if f.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	h.Set("Content-Type", f.ctype)
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// acceptsGzip reads an Accept-Encoding header: gzip (or *) without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		return !strings.HasPrefix(q, "q=0") || strings.HasPrefix(q, "q=0.") && strings.Trim(q[4:], "0") != ""
	}
	return false
}

// etagMatches reads If-None-Match (a list, or *); weak tags compare by
// their value, as RFC 9110 says for If-None-Match.
func etagMatches(header, etag string) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}
