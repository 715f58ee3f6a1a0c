// Command bench is parley's load tool. It speaks the chat protocol over
// many real WebSocket connections, against parley or against the
// tutorial's Node.js server, and reports throughput, latency percentiles
// and the server's memory. BENCHMARKS.md at the repository root shows
// what it measured and how; bench/run.sh reproduces the whole table.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// scenarios lists every -scenario value with a one-line description, in
// the order the help shows them.
var scenarios = []struct{ name, about string }{
	{"signup", "register -users accounts on parley (bounded parallelism) and cache their tokens in -accounts"},
	{"fanout", "1 sender, -receivers members in one room, unpaced (-window messages in flight); deliveries/s"},
	{"rooms", "-rooms rooms x -members members, everyone sending (-window each); deliveries/s"},
	{"paced", "1 sender at -rate msg/s to -receivers members; delivery latency p50/p99/p999"},
	{"durable", "parley only: -senders senders over -rooms rooms; acknowledgements (own echo after commit)/s"},
	{"idle", "-conns signed-in connections held open; server RSS per connection"},
	{"reconnect", "-conns clients in rooms of -members drop and resume at once; time until all are authenticated"},
	{"coldstart", "build (once) a -cold-db of -gen-rooms x -gen-messages, then time process start to ready, -starts times"},
	{"tcp", "raw loopback TCP: one bulk stream (bytes/s) and one writer to -receivers readers (small writes/s)"},
	{"fsync", "the disk: 4 KiB write+fdatasync per second in -fsync-dir (the ceiling for durable writes)"},
}

// config is every flag of the tool. Zero values of the per-scenario
// numbers mean "the scenario's default", listed in the help.
type config struct {
	scenario  string
	target    string
	url       string
	senderURL string
	pid       int
	pprof     string
	cpuProf   string
	heapProf  string
	accounts  string
	commit    string
	jsonOut   string
	label     string

	users     int
	firstUser int
	receivers int
	rooms     int
	members   int
	senders   int
	conns     int
	rate      float64
	window    int
	size      int

	duration time.Duration
	warmup   time.Duration
	settle   time.Duration
	timeout  time.Duration

	parallel int
	sources  int

	parleyBin   string
	coldDB      string
	genRooms    int
	genMessages int
	genUsers    int
	starts      int
	tutorialDir string
	tutorialJS  string
	nodeBin     string

	writers  int
	fsyncDir string

	summarize string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	fs.StringVar(&cfg.scenario, "scenario", "", "what to measure: "+strings.Join(names, ", "))
	fs.StringVar(&cfg.target, "target", "parley", "server dialect: parley, or tutorial (the Node.js reference server: auth {username}, no acknowledgements)")
	fs.StringVar(&cfg.url, "url", "", "WebSocket URL (default ws://127.0.0.1:8080/ws for parley, ws://127.0.0.1:8081/ for tutorial); "+
		"several, comma-separated (a cluster's nodes), take the clients by turns")
	fs.StringVar(&cfg.senderURL, "sender-url", "", "fanout and paced: the sender connects here (another node of a cluster) and the receivers to -url")
	fs.IntVar(&cfg.pid, "pid", 0, "server process id: its RSS, peak RSS, threads and CPU time are read from /proc/PID (0: not reported)")
	fs.StringVar(&cfg.pprof, "pprof", "", "base URL of the server's net/http/pprof (a profiling build, see bench/profile.sh): goroutine count")
	fs.StringVar(&cfg.cpuProf, "cpuprofile", "", "write a CPU profile of the server over the measured phase to this file (needs -pprof)")
	fs.StringVar(&cfg.heapProf, "heapprofile", "", "write the server's heap profile at the end of the measured phase to this file (needs -pprof)")
	fs.StringVar(&cfg.accounts, "accounts", "bench-accounts.json", "parley: file caching the bench users' sign-in tokens, so each password is hashed once")
	fs.StringVar(&cfg.commit, "commit", "", "server version recorded with the result (run.sh passes parley's git commit)")
	fs.StringVar(&cfg.jsonOut, "json", "", "append the result as one JSON line to this file")
	fs.StringVar(&cfg.label, "label", "", "row label of the result (default derived from scenario and sizes)")

	fs.IntVar(&cfg.users, "users", 10000, "signup: accounts to create (bench00000, bench00001, ...)")
	fs.IntVar(&cfg.firstUser, "first-user", -1, "index of the first bench account the scenario uses (default: the scenario's own range, see BENCHMARKS.md)")
	fs.IntVar(&cfg.receivers, "receivers", 0, "fanout, paced: members receiving (default 1000); tcp: readers (default 1000)")
	fs.IntVar(&cfg.rooms, "rooms", 0, "rooms: rooms (default 500); durable: rooms the senders spread over (default 100)")
	fs.IntVar(&cfg.members, "members", 0, "rooms: members per room (default 10); reconnect: room size (default 10); idle: room size, 0 = no rooms (default 0)")
	fs.IntVar(&cfg.senders, "senders", 0, "durable: concurrent senders (default 500)")
	fs.IntVar(&cfg.conns, "conns", 0, "idle: connections (default 10000); reconnect: clients (default 5000)")
	fs.Float64Var(&cfg.rate, "rate", 100, "paced: messages per second")
	fs.IntVar(&cfg.window, "window", 0, "messages a sender may have in flight, not yet delivered to every member (durable: acknowledged) (default fanout 100, rooms 4, durable 4)")
	fs.IntVar(&cfg.size, "size", 100, "message content bytes (send timestamp, sender and sequence, padded with x)")

	fs.DurationVar(&cfg.duration, "duration", 0, "measured sending time (default 10s; paced 30s; tcp and fsync 5s)")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "sending time at the start that is not counted")
	fs.DurationVar(&cfg.settle, "settle", 10*time.Second, "idle: wait after the last connection before reading RSS; others: quiet time after setup")
	fs.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "give up on the whole scenario after this long")

	fs.IntVar(&cfg.parallel, "parallel", 64, "connections set up at once (dial, auth, join); signup uses 2 x GOMAXPROCS")
	fs.IntVar(&cfg.sources, "sources", 16, "source addresses 127.0.0.1..127.0.0.N to dial from (the ephemeral port range is per source address)")

	fs.StringVar(&cfg.parleyBin, "parley-bin", "", "coldstart (parley): the parley binary to start")
	fs.StringVar(&cfg.coldDB, "cold-db", "", "coldstart (parley): database file; generated through the protocol when missing")
	fs.IntVar(&cfg.genRooms, "gen-rooms", 10000, "coldstart: rooms in a generated database")
	fs.IntVar(&cfg.genMessages, "gen-messages", 100, "coldstart: messages per room in a generated database")
	fs.IntVar(&cfg.genUsers, "gen-users", 500, "coldstart: accounts that generate the database (each joins gen-rooms/gen-users rooms)")
	fs.IntVar(&cfg.starts, "starts", 5, "coldstart: process starts timed; the median is reported")
	fs.StringVar(&cfg.tutorialDir, "tutorial-dir", "", "coldstart (tutorial): a copy of the reference server with node_modules installed")
	fs.StringVar(&cfg.tutorialJS, "tutorial-js", "bench/tutorial_loopback.js", "coldstart (tutorial): the launcher that starts the reference server on 127.0.0.1")
	fs.StringVar(&cfg.nodeBin, "node", "node", "coldstart (tutorial): the node binary")

	fs.IntVar(&cfg.writers, "writers", 0, "tcp: goroutines writing small messages in the parallel measurement (default GOMAXPROCS)")
	fs.StringVar(&cfg.fsyncDir, "fsync-dir", os.TempDir(), "fsync: directory of the test file (use the database's)")

	fs.StringVar(&cfg.summarize, "summarize", "", "print the Markdown tables of BENCHMARKS.md from this file of -json results (medians over runs) and exit")

	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: go run ./bench -scenario NAME [flags]\n       go run ./bench -summarize results.jsonl\n\nScenarios:\n")
		for _, s := range scenarios {
			fmt.Fprintf(stderr, "  %-10s %s\n", s.name, s.about)
		}
		fmt.Fprint(stderr, "\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.summarize != "" {
		return summarize(cfg.summarize, stdout)
	}
	if err := cfg.resolve(); err != nil {
		fs.Usage()
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	r := newRunner(cfg, stderr)
	res, err := r.run(ctx)
	if err != nil {
		return fmt.Errorf("scenario %s against %s: %w", cfg.scenario, cfg.target, err)
	}
	res.print(stdout)
	if cfg.jsonOut != "" {
		if err := res.appendJSON(cfg.jsonOut); err != nil {
			return err
		}
	}
	return nil
}

// resolve checks the flags and fills in per-scenario defaults.
func (c *config) resolve() error {
	known := false
	for _, s := range scenarios {
		known = known || s.name == c.scenario
	}
	if !known {
		return fmt.Errorf("-scenario %q: want one of the scenarios listed above", c.scenario)
	}
	switch c.target {
	case "parley":
		if c.url == "" {
			c.url = "ws://127.0.0.1:8080/ws"
		}
	case "tutorial":
		if c.url == "" {
			c.url = "ws://127.0.0.1:8081/"
		}
	default:
		return fmt.Errorf("-target %q: want parley or tutorial", c.target)
	}
	if (c.cpuProf != "" || c.heapProf != "") && c.pprof == "" {
		return fmt.Errorf("-cpuprofile and -heapprofile need -pprof")
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	switch c.scenario {
	case "fanout":
		def(&c.receivers, 1000)
		def(&c.window, 100)
	case "paced":
		def(&c.receivers, 1000)
		defDur(&c.duration, 30*time.Second)
		if c.rate <= 0 {
			return fmt.Errorf("-rate %v: must be positive", c.rate)
		}
	case "rooms":
		def(&c.rooms, 500)
		def(&c.members, 10)
		def(&c.window, 4)
		if c.members < 2 {
			return fmt.Errorf("-members %d: a room needs 2 members for a delivery", c.members)
		}
	case "durable":
		if c.target != "parley" {
			return fmt.Errorf("durable: the tutorial server stores nothing and sends no acknowledgement; run it against parley")
		}
		def(&c.senders, 500)
		def(&c.rooms, 100)
		def(&c.window, 4)
	case "idle":
		def(&c.conns, 10000)
	case "reconnect":
		def(&c.conns, 5000)
		def(&c.members, 10)
	case "tcp":
		def(&c.receivers, 1000)
		defDur(&c.duration, 5*time.Second)
	case "fsync":
		defDur(&c.duration, 5*time.Second)
	case "coldstart":
		if c.target == "parley" && (c.parleyBin == "" || c.coldDB == "") {
			return fmt.Errorf("coldstart against parley needs -parley-bin and -cold-db")
		}
		if c.target == "tutorial" && c.tutorialDir == "" {
			return fmt.Errorf("coldstart against tutorial needs -tutorial-dir")
		}
	}
	defDur(&c.duration, 10*time.Second)
	if c.warmup >= c.duration && c.scenario != "tcp" && c.scenario != "fsync" {
		return fmt.Errorf("-warmup %s must be shorter than -duration %s", c.warmup, c.duration)
	}
	if c.size < 40 {
		return fmt.Errorf("-size %d: the content needs at least 40 bytes for sender, sequence and timestamp", c.size)
	}
	if c.parallel < 1 || c.sources < 1 || c.sources > 254 {
		return fmt.Errorf("-parallel must be at least 1 and -sources between 1 and 254")
	}
	if c.writers < 1 {
		c.writers = runtime.GOMAXPROCS(0)
	}
	return nil
}
