package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestMetrics_RequestDurationByRoute: requests are counted under their
// route's pattern and status; WebSocket connections are not requests.
func TestMetrics_RequestDurationByRoute(t *testing.T) {
	ts := startServer(t, nil)
	for range 2 {
		httpGet(t, ts.URL()+"/healthz")
	}
	httpGet(t, ts.URL()+"/files/0123/missing.txt")
	resp, err := http.Post(ts.URL()+"/upload?name=x.txt", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	signedIn(t, ts, "counted")

	m := scrape(t, ts.URL()+"/metrics")
	const name = "parley_http_request_duration_seconds"
	for _, tc := range []struct {
		key  string
		want float64
	}{
		{name + `{code="200",route="GET /healthz"}_count`, 2},
		{name + `{code="404",route="GET /files/{id}/{name}"}_count`, 1},
		{name + `{code="` + strconv.Itoa(resp.StatusCode) + `",route="POST /upload"}_count`, 1},
	} {
		if m[tc.key] != tc.want {
			t.Errorf("%s = %v, want %v", tc.key, m[tc.key], tc.want)
		}
	}
	for key := range m {
		if strings.HasPrefix(key, name) && strings.Contains(key, "/ws") {
			t.Errorf("a WebSocket connection was measured as a request: %s", key)
		}
	}
}
