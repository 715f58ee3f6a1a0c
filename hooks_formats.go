package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// What an incoming webhook accepts, and how each becomes one message:
//
//   - Slack's incoming-webhook JSON: {"text": "...", "username": "CI"},
//     with attachments ({fallback, pretext, title, title_link, text}) and
//     section blocks read as text when there is no "text".
//   - Alertmanager's webhook JSON (version 4): a title line with the
//     status, the number of alerts and the group, then one line per alert
//     with its summary or description and its labels, and the link back.
//   - Grafana's: unified alerting (Alertmanager's JSON plus "title" and
//     "message"), shown as its title and message; and legacy alerting
//     ({"title", "ruleName", "state", "message", "evalMatches", "ruleUrl"}).
//
// The text is shown as text (never as HTML), like any message.

type slackAttachment struct {
	Fallback  string `json:"fallback"`
	Pretext   string `json:"pretext"`
	Title     string `json:"title"`
	TitleLink string `json:"title_link"`
	Text      string `json:"text"`
}

type slackBlock struct {
	Type string `json:"type"`
	Text *struct {
		Text string `json:"text"`
	} `json:"text"`
}

type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	GeneratorURL string            `json:"generatorURL"`
	ValueString  string            `json:"valueString"` // Grafana
}

type grafanaMatch struct {
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
}

type hookPayload struct {
	// Slack
	Text        string            `json:"text"`
	Username    string            `json:"username"`
	Attachments []slackAttachment `json:"attachments"`
	Blocks      []slackBlock      `json:"blocks"`
	// Alertmanager, and Grafana's unified alerting
	Status            string            `json:"status"`
	Alerts            []amAlert         `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	// Grafana
	Title       string         `json:"title"`
	Message     string         `json:"message"`
	State       string         `json:"state"`
	RuleName    string         `json:"ruleName"`
	RuleURL     string         `json:"ruleUrl"`
	EvalMatches []grafanaMatch `json:"evalMatches"`
}

// maxAlertLines bounds the alerts listed one per line; the rest are
// counted.
const maxAlertLines = 20

// hookMessage turns a webhook's body into a message's text and the label
// it is shown with. raw says the text is the sender's own words (Slack's
// "text"), to be checked like a chat message; otherwise it is made here
// from structured fields and may be cut to fit.
func hookMessage(body []byte) (text, label string, raw bool, err error) {
	var p hookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return "", "", false, fmt.Errorf("the body is not JSON of a known form: %w", err)
	}
	switch {
	case p.Text != "":
		text = p.Text
		if extra := slackAttachments(p.Attachments); extra != "" {
			text += "\n" + extra
		}
		return text, p.Username, true, nil
	case len(p.Alerts) > 0 && p.Title != "":
		text = p.Title
		if p.Message != "" {
			text += "\n" + p.Message
		} else {
			text += "\n" + alertLines(p)
		}
		return text, orDefault(p.Username, "Grafana"), false, nil
	case len(p.Alerts) > 0:
		return alertmanagerText(p), orDefault(p.Username, "Alertmanager"), false, nil
	case p.RuleName != "" || (p.Title != "" && p.State != ""):
		return grafanaLegacyText(p), orDefault(p.Username, "Grafana"), false, nil
	case len(p.Attachments) > 0 || len(p.Blocks) > 0:
		text = slackAttachments(p.Attachments)
		for _, b := range p.Blocks {
			if b.Type == "section" && b.Text != nil && b.Text.Text != "" {
				text = strings.TrimPrefix(text+"\n"+b.Text.Text, "\n")
			}
		}
		if text != "" {
			return text, p.Username, true, nil
		}
	}
	return "", "", false, fmt.Errorf(`nothing to post: send {"text": "..."}, or Alertmanager's or Grafana's alert JSON`)
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func slackAttachments(atts []slackAttachment) string {
	var lines []string
	for _, a := range atts {
		for _, s := range []string{a.Pretext, a.Title, a.TitleLink, a.Text} {
			if s != "" {
				lines = append(lines, s)
			}
		}
		if a.Text == "" && a.Title == "" && a.Fallback != "" {
			lines = append(lines, a.Fallback)
		}
	}
	return strings.Join(lines, "\n")
}

// labelList shows labels as k=v, in key order, leaving out skip.
func labelList(labels map[string]string, skip ...string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if !slices.Contains(skip, k) {
			parts = append(parts, k+"="+labels[k])
		}
	}
	return strings.Join(parts, ", ")
}

func alertmanagerText(p hookPayload) string {
	name := p.GroupLabels["alertname"]
	if name == "" {
		name = p.CommonLabels["alertname"]
	}
	title := fmt.Sprintf("[%s:%d] %s", strings.ToUpper(orDefault(p.Status, "firing")), len(p.Alerts), name)
	if rest := labelList(p.GroupLabels, "alertname"); rest != "" {
		title += " (" + rest + ")"
	}
	text := strings.TrimSpace(title) + "\n" + alertLines(p)
	if p.ExternalURL != "" {
		text += "\n" + p.ExternalURL
	}
	return text
}

// alertLines lists the alerts, one a line, firing ones first.
func alertLines(p hookPayload) string {
	alerts := slices.Clone(p.Alerts)
	resolved := func(a amAlert) int {
		if strings.EqualFold(a.Status, "resolved") {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(alerts, func(a, b amAlert) int { return resolved(a) - resolved(b) })
	var lines []string
	for i, a := range alerts {
		if i == maxAlertLines {
			lines = append(lines, fmt.Sprintf("… and %d more", len(alerts)-i))
			break
		}
		line := fmt.Sprintf("• [%s] %s", strings.ToLower(orDefault(a.Status, "firing")), orDefault(a.Labels["alertname"], "alert"))
		if s := orDefault(a.Annotations["summary"], a.Annotations["description"]); s != "" {
			line += ": " + s
		}
		if l := labelList(a.Labels, "alertname"); l != "" {
			line += " (" + l + ")"
		}
		if a.ValueString != "" {
			line += " " + a.ValueString
		}
		if a.GeneratorURL != "" {
			line += " " + a.GeneratorURL
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func grafanaLegacyText(p hookPayload) string {
	title := p.Title
	if title == "" {
		title = p.RuleName
	}
	if p.State != "" {
		title = "[" + p.State + "] " + title
	}
	lines := []string{title}
	if p.Message != "" {
		lines = append(lines, p.Message)
	}
	for i, m := range p.EvalMatches {
		if i == maxAlertLines {
			lines = append(lines, fmt.Sprintf("… and %d more", len(p.EvalMatches)-i))
			break
		}
		lines = append(lines, fmt.Sprintf("• %s: %g", m.Metric, m.Value))
	}
	if p.RuleURL != "" {
		lines = append(lines, p.RuleURL)
	}
	return strings.Join(lines, "\n")
}

// cleanText drops what no message may hold (control characters other
// than tab and line breaks, bidi overrides) from text made of fields,
// and cuts it to max characters.
func cleanText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return r
		}
		if refusedRune(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return strings.TrimSpace(s)
}

// cleanLabel makes a label one short line.
func cleanLabel(s string) string {
	s = strings.Join(strings.Fields(cleanText(s, 200)), " ")
	if utf8.RuneCountInString(s) > maxLabelChars {
		s = string([]rune(s)[:maxLabelChars])
	}
	return s
}

// maxLabelChars bounds a webhook's label (Slack's username).
const maxLabelChars = 40
