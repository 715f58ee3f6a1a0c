package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// postHook posts a body to a webhook URL and returns the status and answer.
func postHook(t *testing.T, url, contentType, body string) (int, hookReply) {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var r hookReply
	_ = json.NewDecoder(resp.Body).Decode(&r)
	if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	return resp.StatusCode, r
}

// TestHooks: a room's owner makes a webhook; what it receives in Slack's,
// Alertmanager's or Grafana's JSON is posted into the room by its bot,
// within chat's limits, until the hook is revoked.
func TestHooks(t *testing.T) {
	ts := startServer(t, nil)
	owner, _ := signedIn(t, ts, "owner")
	owner.join("ops")
	member, _ := signedIn(t, ts, "member")
	member.join("ops")

	member.send("createHook", map[string]string{"roomId": "ops"})
	member.awaitError(codeForbidden)
	owner.send("createHook", map[string]string{"roomId": "ops", "name": "ci-bot"})
	var hook hookInfo
	decodeInto(t, owner.await("hookCreated"), &hook)
	if hook.Name != "ci-bot" || !strings.HasPrefix(hook.URL, "http://") || !strings.Contains(hook.URL, "/hooks/") {
		t.Fatalf("hookCreated: %+v", hook)
	}
	var joined roomUserData
	decodeInto(t, member.await("userJoined"), &joined)
	if !joined.Bot || joined.Username != "ci-bot" {
		t.Fatalf("the hook's bot joins as %+v", joined)
	}
	url := ts.URL() + hook.URL[strings.Index(hook.URL, "/hooks/"):]

	t.Run("slack", func(t *testing.T) {
		status, r := postHook(t, url, "application/json", `{"text": "deploy of v1.2 done", "username": "CI"}`)
		if status != 200 || !r.OK || r.ID == "" {
			t.Fatalf("POST: %d %+v", status, r)
		}
		m := member.awaitMessage("deploy of v1.2 done")
		if !m.Bot || m.BotLabel != "CI" || m.SenderName != "ci-bot" || m.ID != r.ID {
			t.Fatalf("the hook's message: %+v", m)
		}
		status, _ = postHook(t, url, "application/x-www-form-urlencoded", "payload="+`%7B%22text%22%3A%22form%20encoded%22%7D`)
		if status != 200 {
			t.Fatalf("form-encoded payload: %d", status)
		}
		member.awaitMessage("form encoded")
	})

	t.Run("alertmanager and grafana", func(t *testing.T) {
		for _, tc := range []struct{ name, body, first, label string }{
			{"alertmanager", `{"version":"4","status":"firing","receiver":"parley","groupLabels":{"alertname":"HighCPU"},
				"commonLabels":{"alertname":"HighCPU"},"externalURL":"http://am.example:9093",
				"alerts":[{"status":"firing","labels":{"alertname":"HighCPU","instance":"db1"},"annotations":{"summary":"CPU above 90%"}},
				          {"status":"resolved","labels":{"alertname":"HighCPU","instance":"db2"},"annotations":{"summary":"CPU above 90%"}}]}`,
				"[FIRING:2] HighCPU\n• [firing] HighCPU: CPU above 90% (instance=db1)\n• [resolved] HighCPU: CPU above 90% (instance=db2)\nhttp://am.example:9093", "Alertmanager"},
			{"grafana unified", `{"receiver":"parley","status":"firing","orgId":1,"title":"[FIRING:1] DiskFull","message":"Disk / is 97% full",
				"alerts":[{"status":"firing","labels":{"alertname":"DiskFull"},"annotations":{}}]}`,
				"[FIRING:1] DiskFull\nDisk / is 97% full", "Grafana"},
			{"grafana legacy", `{"title":"Latency","ruleName":"Latency","state":"alerting","message":"p99 is high",
				"evalMatches":[{"metric":"p99","value":812}],"ruleUrl":"http://grafana.example/d/1"}`,
				"[alerting] Latency\np99 is high\n• p99: 812\nhttp://grafana.example/d/1", "Grafana"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if status, r := postHook(t, url, "application/json", tc.body); status != 200 {
					t.Fatalf("POST: %d %+v", status, r)
				}
				m := member.awaitMessage(tc.first)
				if m.BotLabel != tc.label {
					t.Fatalf("label %q, want %q", m.BotLabel, tc.label)
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			status     int
		}{
			{"not json", `text=hello`, 400},
			{"no text", `{"username": "CI"}`, 400},
			{"control characters", `{"text": "bell\u0007"}`, 400},
			{"too long", `{"text": "` + strings.Repeat("a", 4001) + `"}`, 400},
			{"too large", `{"text": "` + strings.Repeat("a", 70<<10) + `"}`, 413},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if status, r := postHook(t, url, "application/json", tc.body); status != tc.status || r.OK {
					t.Fatalf("got %d %+v, want %d", status, r, tc.status)
				}
			})
		}
		if status, _ := postHook(t, ts.URL()+"/hooks/not-a-hook", "application/json", `{"text":"x"}`); status != 404 {
			t.Fatalf("an unknown hook: %d", status)
		}
	})

	t.Run("rate limited like chat", func(t *testing.T) {
		limited := false
		for i := range ts.cfg.Limits.Burst + 2 {
			if status, r := postHook(t, url, "application/json", `{"text": "flood"}`); status == 429 {
				limited = r.Code == codeRateLimited && r.RetryAfter > 0
				break
			} else if status != 200 {
				t.Fatalf("post %d: %d", i, status)
			}
		}
		if !limited {
			t.Fatal("a hook posted past its burst")
		}
	})

	t.Run("list and revoke", func(t *testing.T) {
		member.send("hooks", map[string]string{"roomId": "ops"})
		member.awaitError(codeForbidden)
		owner.send("hooks", map[string]string{"roomId": "ops"})
		var list struct{ Hooks []hookInfo }
		decodeInto(t, owner.await("hooks"), &list)
		if len(list.Hooks) != 1 || list.Hooks[0].ID != hook.ID || list.Hooks[0].URL != "" {
			t.Fatalf("hooks: %+v", list.Hooks)
		}
		owner.send("deleteHook", map[string]string{"id": hook.ID})
		owner.await("hookDeleted")
		var left roomUserData
		decodeInto(t, member.await("userLeft"), &left)
		if left.Username != "ci-bot" {
			t.Fatalf("userLeft: %+v", left)
		}
		if status, _ := postHook(t, url, "application/json", `{"text": "after revoke"}`); status != 404 {
			t.Fatalf("a revoked hook: %d", status)
		}
	})
}

// TestBots: an admin makes a bot account, whose API token signs it in
// over the WebSocket without a password.
func TestBots(t *testing.T) {
	ts := startServer(t, nil)
	admin, _ := signedIn(t, ts, "admin")
	person, _ := signedIn(t, ts, "person")
	person.send("createBot", map[string]string{"username": "helper"})
	person.awaitError(codeForbidden)
	admin.send("createBot", map[string]string{"username": "helper"})
	var bot struct{ UserID, Username, Token string }
	decodeInto(t, admin.await("botCreated"), &bot)
	c := dial(t, ts.WSURL())
	c.send("auth", map[string]string{"token": bot.Token})
	var a authenticatedData
	decodeInto(t, c.expect("authenticated"), &a)
	if !a.Bot || a.Username != "helper" {
		t.Fatalf("the bot's authenticated: %+v", a)
	}
	admin.join("room")
	c.join("room")
	c.send("chat", map[string]string{"roomId": "room", "content": "beep"})
	if m := admin.awaitMessage("beep"); !m.Bot || m.BotLabel != "" {
		t.Fatalf("a bot's message: %+v", m)
	}
	// Logging out does not throw its API token away.
	c.send("logout", nil)
	c.await("loggedOut")
	again := dial(t, ts.WSURL())
	again.send("auth", map[string]string{"token": bot.Token})
	again.expect("authenticated")
	pw := dial(t, ts.WSURL())
	pw.send("auth", map[string]string{"username": "helper", "password": "anything-at-all"})
	pw.expectError(codeAuthFailed)
}
