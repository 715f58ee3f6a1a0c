package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestStatic_CompressedAndCached (issue 14, item 9): the page's files are
// served gzipped to browsers that take it, with ETags; index.html is
// revalidated on every load and loads everything else from versioned
// URLs that are cached for good; a revalidation costs no body.
func TestStatic_CompressedAndCached(t *testing.T) {
	ts := startServer(t, nil)
	get := func(path string, header map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL()+path, nil)
		req.Header.Set("Accept-Encoding", "identity")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	gunzip := func(b []byte) []byte {
		t.Helper()
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("not gzip: %v", err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	resp, zipped := get("/", map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("GET / with gzip: %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("index.html Cache-Control %q, want no-cache (revalidated on every load)", cc)
	}
	if resp.Header.Get("Content-Security-Policy") == "" {
		t.Error("the page lost its Content-Security-Policy")
	}
	index := gunzip(zipped)
	m := regexp.MustCompile(`src="(/v/[0-9a-f]+/)js/main.js"`).FindSubmatch(index)
	if m == nil {
		t.Fatalf("index.html does not load a versioned main.js:\n%s", index[:400])
	}
	prefix := string(m[1])
	if !bytes.Contains(index, []byte(`<link rel="modulepreload" href="`+prefix+`js/app.js">`)) {
		t.Error("index.html does not preload the modules")
	}
	etag := resp.Header.Get("ETag")
	resp, body := get("/", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("revalidating index.html: %d with %d bytes, want 304 and nothing", resp.StatusCode, len(body))
	}

	files := staticFiles()
	var raw, sent int
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "index.html" {
			return err
		}
		want, _ := fs.ReadFile(files, name)
		resp, body := get("/"+prefix[1:]+name, map[string]string{"Accept-Encoding": "gzip"})
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", name, resp.StatusCode)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") || !strings.Contains(cc, "max-age=31536000") {
			t.Errorf("%s: Cache-Control %q, want a year, immutable", name, cc)
		}
		got := body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			got = gunzip(body)
		} else if len(want) > 4096 && !strings.HasSuffix(name, ".png") {
			t.Errorf("%s (%d bytes) is not compressed", name, len(want))
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: served content differs from the file", name)
		}
		if !strings.HasSuffix(name, ".png") { // images come compressed already
			raw += len(want)
			sent += len(body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the page's files: %d bytes, %d sent gzipped (plus index.html: %d, %d gzipped)", raw, sent, len(index), len(zipped))
	if sent*3 > raw {
		t.Errorf("gzip sends %d of %d bytes; expected well under a third", sent, raw)
	}

	// Unversioned paths still work, revalidated; so does a plain client.
	resp, body = get("/js/app.js", nil)
	want, _ := fs.ReadFile(files, "js/app.js")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, want) {
		t.Errorf("/js/app.js without gzip: %d, %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Encoding"), len(body))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" || resp.Header.Get("ETag") == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("/js/app.js: Cache-Control %q, ETag %q, Content-Type %q", cc, resp.Header.Get("ETag"), resp.Header.Get("Content-Type"))
	}
	if resp, _ := get("/js/app.js", map[string]string{"If-None-Match": resp.Header.Get("ETag")}); resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidating /js/app.js: %d", resp.StatusCode)
	}
	if resp, _ := get("/v/000000000000/js/app.js", nil); resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("another version's URL: %d, Cache-Control %q; want this build's file, revalidated", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	for _, path := range []string{"/no-such-file.js", "/js/", prefix + "index.html"} {
		if resp, _ := get(path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"": false, "gzip": true, "gzip, deflate, br": true, "br;q=1.0, gzip;q=0.8": true,
		"gzip;q=0": false, "gzip; q=0.000": false, "gzip;q=0.5": true, "*": true, "identity": false, "deflate": false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
