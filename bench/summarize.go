package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// goal is one row of the targets: which result it reads and how
// it is judged.
type goal struct {
	label   string // result label
	metric  string
	unit    string
	target  string
	ceiling string // metric of another label giving the physical ceiling, "label:metric"
	// met judges the medians; tutorial is 0 when the row has none.
	met func(parley, tutorial float64) bool
}

var goals = []goal{
	{"fanout 1->1000", "deliveries_per_s", "deliveries/s", "≥ 3× tutorial", "tcp loopback:small_writes_per_s",
		func(p, t float64) bool { return t > 0 && p >= 3*t }},
	{"rooms 500x10", "deliveries_per_s", "deliveries/s", "≥ 20× tutorial", "tcp loopback:small_writes_per_s",
		func(p, t float64) bool { return t > 0 && p >= 20*t }},
	{"paced 1->1000 @100/s", "latency_p99_ms", "p99 ms", "p99 ≤ 50 ms", "",
		func(p, _ float64) bool { return p > 0 && p <= 50 }},
	{"paced 1->200 @100/s", "latency_p99_ms", "p99 ms", "p99 ≤ 10 ms", "",
		func(p, _ float64) bool { return p > 0 && p <= 10 }},
	{"durable 500 senders/100 rooms", "acks_per_s", "acks/s", "≥ 20,000/s", "fsync 4KiB:fsyncs_per_s",
		func(p, _ float64) bool { return p >= 20000 }},
	{"idle 10000", "rss_per_conn_kb", "KB RSS/conn", "≤ 20 KB", "",
		func(p, _ float64) bool { return p > 0 && p <= 20 }},
	{"reconnect 5000", "all_authenticated_s", "s until all signed in", "≤ 10 s", "",
		func(p, _ float64) bool { return p > 0 && p <= 10 }},
	{"coldstart 10000x100", "ready_s", "s to ready", "≤ 1 s", "",
		func(p, _ float64) bool { return p > 0 && p <= 1 }},
}

// detailMetrics are shown per row in the second table, when present.
var detailMetrics = []string{
	"deliveries_per_s", "messages_per_s", "acks_per_s",
	"latency_p50_ms", "latency_p99_ms", "latency_p999_ms", "latency_max_ms",
	"ack_latency_p50_ms", "ack_latency_p99_ms",
	"rss_per_conn_kb", "all_authenticated_s", "not_back_within_limit", "failed_attempts", "client_p50_ms", "client_p99_ms", "presence_frames", "ready_s", "db_mb",
	"server_cpu_cores", "bench_cpu_cores", "other_cpu_cores", "server_rss_mb", "server_peak_rss_mb", "server_threads", "server_goroutines",
	"bulk_bytes_per_s", "small_writes_per_s", "small_writes_per_s_parallel", "fsyncs_per_s", "fsync_ms", "fsync_p99_ms", "fsync_max_ms",
	"deliveries_lost", "conns_closed_by_server", "signin_drops_retried", "error_frames", "dial_retries", "rate_limited_retries", "setup_s",
}

type rowKey struct{ label, target string }

// summarize prints the Markdown tables of BENCHMARKS.md: the targets
// with medians over runs, and every row's medians.
func summarize(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open results: %w", err)
	}
	defer f.Close()
	runs := map[rowKey][]result{}
	var order []rowKey
	commits := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var res result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		k := rowKey{res.Label, res.Target}
		if _, seen := runs[k]; !seen {
			order = append(order, k)
		}
		runs[k] = append(runs[k], res)
		if res.Commit != "" && res.Target == "parley" {
			commits[res.Commit] = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	med := func(k rowKey, metric string) (float64, int) {
		var vs []float64
		for _, r := range runs[k] {
			if v, ok := r.Metrics[metric]; ok {
				vs = append(vs, v)
			}
		}
		slices.Sort(vs)
		return median(vs), len(vs)
	}

	var cs []string
	for c := range commits {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	fmt.Fprintf(w, "parley commit: %s\n\n", strings.Join(cs, ", "))
	fmt.Fprintln(w, "| Scenario | Measure | parley | tutorial | parley / tutorial | ceiling | Target | Met |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---|---|")
	for _, g := range goals {
		p, np := med(rowKey{g.label, "parley"}, g.metric)
		t, nt := med(rowKey{g.label, "tutorial"}, g.metric)
		cell := func(v float64, n int) string {
			if n == 0 {
				return "—"
			}
			return fmt.Sprintf("%s (n=%d)", formatNumber(v), n)
		}
		ratio := "—"
		if np > 0 && nt > 0 && t > 0 {
			ratio = fmt.Sprintf("%.2f×", p/t)
		}
		ceil := "—"
		if g.ceiling != "" {
			label, metric, _ := strings.Cut(g.ceiling, ":")
			for _, target := range []string{"parley", "tutorial"} {
				if v, n := med(rowKey{label, target}, metric); n > 0 {
					ceil = formatNumber(v)
					break
				}
			}
		}
		met := "not measured"
		if np > 0 {
			met = "not met"
			if g.met(p, t) {
				met = "**met**"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", g.label, g.unit, cell(p, np), cell(t, nt), ratio, ceil, g.target, met)
	}

	fmt.Fprintln(w, "\nEvery row's medians:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Row | Server | Runs | Medians |")
	fmt.Fprintln(w, "|---|---|---:|---|")
	for _, k := range order {
		var parts []string
		for _, m := range detailMetrics {
			if v, n := med(k, m); n > 0 {
				parts = append(parts, fmt.Sprintf("%s %s", m, formatNumber(v)))
			}
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s |\n", k.label, k.target, len(runs[k]), strings.Join(parts, ", "))
	}
	return nil
}
