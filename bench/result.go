package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"time"
)

// result is one scenario run: what was run and what it measured. Runs
// are appended to a file as JSON lines; -summarize reads them back.
type result struct {
	Scenario string             `json:"scenario"`
	Target   string             `json:"target"`
	Label    string             `json:"label"`
	Commit   string             `json:"commit,omitempty"`
	Start    time.Time          `json:"start"`
	Params   map[string]any     `json:"params"`
	Metrics  map[string]float64 `json:"metrics"`
	Notes    []string           `json:"notes,omitempty"`
}

func newResult(cfg config) *result {
	return &result{
		Scenario: cfg.scenario,
		Target:   cfg.target,
		Label:    cfg.label,
		Commit:   cfg.commit,
		Start:    time.Now().UTC(),
		Params:   map[string]any{"url": cfg.url, "gomaxprocs": runtime.GOMAXPROCS(0)},
		Metrics:  map[string]float64{},
	}
}

func (r *result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// setLabel sets the row label unless -label chose one.
func (r *result) setLabel(format string, args ...any) {
	if r.Label == "" {
		r.Label = fmt.Sprintf(format, args...)
	}
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "%s — %s", r.Label, r.Target)
	if r.Commit != "" {
		fmt.Fprintf(w, " (%s)", r.Commit)
	}
	fmt.Fprintln(w)
	keys := make([]string, 0, len(r.Metrics))
	for k := range r.Metrics {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-24s %s\n", k, formatNumber(r.Metrics[k]))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

func (r *result) appendJSON(path string) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open results %s: %w", path, err)
	}
	if _, err := f.Write(append(raw, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("append result to %s: %w", path, err)
	}
	return f.Close()
}

// formatNumber prints a measurement with sensible precision.
func formatNumber(v float64) string {
	switch a := max(v, -v); {
	case a == 0:
		return "0"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 0.1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
