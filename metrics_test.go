package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestMetrics_DeliveryAndSessions: the delivery latency of a sample of
// messages, sign-ins by outcome, and WebSocket closes by code and side
// are in /metrics.
func TestMetrics_DeliveryAndSessions(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond = 0
	ts := startServer(t, &cfg)
	c, _ := signedIn(t, ts, "counted")
	c.join("metered")
	listener, _ := signedIn(t, ts, "listener")
	listener.join("metered")
	for i := range 2 * deliverySample {
		c.send("chat", map[string]string{"roomId": "metered", "content": fmt.Sprint("tick ", i)})
		listener.awaitMessage(fmt.Sprint("tick ", i))
	}
	bad := dial(t, ts.WSURL())
	bad.send("auth", map[string]string{"username": "counted", "password": "not-the-password"})
	bad.expectError(codeAuthFailed)
	if err := bad.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")); err != nil {
		t.Fatal(err)
	}
	bad.waitClosed(frameWait)
	listener.conn.Close() // no close frame: 1006
	waitFor(t, "both closes to be counted", func() bool {
		m := scrape(t, ts.URL()+"/metrics")
		return m[`parley_websocket_closes_total{by="client",code="1000"}`] >= 1 && m[`parley_websocket_closes_total{by="client",code="1006"}`] >= 1
	})
	m := scrape(t, ts.URL()+"/metrics")
	for name, least := range map[string]float64{
		`parley_delivery_seconds_count`:                                  1,
		`parley_sign_ins_total{method="password",outcome="created"}`:     2,
		`parley_sign_ins_total{method="password",outcome="auth_failed"}`: 1,
	} {
		if m[name] < least {
			t.Errorf("%s = %v, want at least %v", name, m[name], least)
		}
	}
	if m[`parley_delivery_seconds_sum`] <= 0 || m[`parley_delivery_seconds_sum`]/m[`parley_delivery_seconds_count`] > 5 {
		t.Errorf("delivery took %v s over %v messages", m[`parley_delivery_seconds_sum`], m[`parley_delivery_seconds_count`])
	}
}

// TestMetrics_GrafanaDashboard: the dashboard in deploy/ is valid JSON and
// asks only for metrics the server exports, so it cannot drift from them.
func TestMetrics_GrafanaDashboard(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana-dashboard.json: %v", err)
	}
	cfg := clusterConfigs(t, 1, 1)[0] // a node, so the cluster's metrics are there too
	ts := startServer(t, &cfg)
	// Traffic, so the metrics with labels have some.
	c, _ := signedIn(t, ts, "viewer")
	c.conn.Close()
	httpGet(t, ts.URL()+"/healthz")
	waitFor(t, "the close to be counted", func() bool {
		return scrape(t, ts.URL()+"/metrics")[`parley_websocket_closes_total{by="client",code="1006"}`] == 1
	})
	resp, err := http.Get(ts.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	exported := string(body)
	name := regexp.MustCompile(`\b(parley|process|go)_[a-z_]+`)
	used := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				used++
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
				if !strings.Contains(exported, "# TYPE "+n+" ") && !strings.Contains(exported, "# TYPE "+base+" histogram") {
					t.Errorf("panel %q asks for %s, which /metrics does not have", p.Title, n)
				}
			}
		}
	}
	if used < 10 {
		t.Fatalf("the dashboard uses %d metrics", used)
	}
}
