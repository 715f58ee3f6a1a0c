package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// runner holds one scenario run's state: its flags, the dialer, the
// account cache, counters, and the result being filled in.
type runner struct {
	cfg    config
	log    io.Writer
	dialer *dialer
	accts  *accounts
	res    *result

	counters    frameCounters
	rateLimited atomic.Int64 // rate_limited answers that were retried
	serverDrops atomic.Int64 // connections the server closed during sign-in, retried
}

func newRunner(cfg config, log io.Writer) *runner {
	return &runner{
		cfg:    cfg,
		log:    log,
		dialer: newDialer(cfg.url, cfg.senderURL, cfg.sources),
		res:    newResult(cfg),
	}
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// run prepares what the scenario needs and runs it.
func (r *runner) run(ctx context.Context) (*result, error) {
	if r.cfg.target == "parley" && r.cfg.scenario != "tcp" && r.cfg.scenario != "fsync" && r.cfg.scenario != "coldstart" {
		a, err := loadAccounts(r.cfg.accounts)
		if err != nil {
			return nil, err
		}
		r.accts = a
	} else {
		r.accts = &accounts{tokens: map[string]string{}}
	}
	var err error
	switch r.cfg.scenario {
	case "signup":
		err = r.runSignup(ctx)
	case "fanout":
		err = r.runFanout(ctx)
	case "rooms":
		err = r.runRooms(ctx)
	case "paced":
		err = r.runPaced(ctx)
	case "durable":
		err = r.runDurable(ctx)
	case "idle":
		err = r.runIdle(ctx)
	case "reconnect":
		err = r.runReconnect(ctx)
	case "coldstart":
		err = r.runColdStart(ctx)
	case "tcp":
		err = r.runTCP(ctx)
	case "fsync":
		err = r.runFsync(ctx)
	}
	if r.accts.path != "" {
		if serr := r.accts.save(); err == nil {
			err = serr
		}
	}
	if n := r.dialer.retries.Load(); n > 0 {
		r.res.Metrics["dial_retries"] = float64(n)
	}
	if n := r.serverDrops.Load(); n > 0 {
		r.res.Metrics["signin_drops_retried"] = float64(n)
		r.res.note("the server closed %d connections while they signed in (parley: 1013, send buffer full); each reconnected and signed in again", n)
	}
	if n := r.rateLimited.Load(); n > 0 {
		r.res.Metrics["rate_limited_retries"] = float64(n)
		r.res.note("the server answered rate_limited %d times; the tool waited retryAfter and retried", n)
	}
	return r.res, err
}

func (r *runner) runSignup(ctx context.Context) error {
	first := r.firstUser(0)
	created, took, err := r.signup(ctx, first, r.cfg.users)
	if err != nil {
		return err
	}
	r.res.Label = fmt.Sprintf("signup %d", r.cfg.users)
	r.res.Metrics["created"] = float64(created)
	r.res.Metrics["cached"] = float64(r.accts.count())
	if created > 0 {
		r.res.Metrics["signup_s"] = took.Seconds()
		r.res.Metrics["signups_per_s"] = float64(created) / took.Seconds()
	}
	return nil
}

// firstUser is -first-user, or the scenario's own default range.
func (r *runner) firstUser(def int) int {
	if r.cfg.firstUser >= 0 {
		return r.cfg.firstUser
	}
	return def
}

// connectAll dials, signs in and joins bench accounts first..first+n-1,
// -parallel at a time; roomsOf gives the rooms of the k-th one. Against
// parley, accounts without a cached token are signed up first.
func (r *runner) connectAll(ctx context.Context, first, n int, roomsOf func(k int) []string) ([]*conn, error) {
	if r.cfg.target == "parley" {
		created, took, err := r.signup(ctx, first, n)
		if err != nil {
			return nil, err
		}
		if created > 0 {
			r.res.note("%d accounts had to be signed up first (%.1fs); run -scenario signup beforehand to keep that out of the run", created, took.Seconds())
		}
	}
	conns := make([]*conn, n)
	start := time.Now()
	var progress atomic.Int64
	err := forEach(ctx, n, r.cfg.parallel, func(ctx context.Context, k int) error {
		c, err := r.connect(ctx, first+k, roomsOf(k))
		if err != nil {
			return err
		}
		conns[k] = c
		if done := progress.Add(1); done%2000 == 0 {
			r.logf("  %d/%d connected", done, n)
		}
		return nil
	})
	if err != nil {
		closeAll(conns)
		return nil, fmt.Errorf("connect %d clients: %w", n, err)
	}
	r.res.Metrics["setup_s"] = time.Since(start).Seconds()
	r.logf("%d clients signed in and joined in %.1fs", n, time.Since(start).Seconds())
	return conns, nil
}

// maxDropRetries is how often a client the server disconnects while it
// signs in (parley's 1013 when its send buffer fills) reconnects, as a
// real client would, before the run fails.
const maxDropRetries = 5

// connect dials, signs in as bench account user and joins rooms. A
// connection the server closes meanwhile is counted and retried.
func (r *runner) connect(ctx context.Context, user int, rooms []string) (*conn, error) {
	url := r.dialer.urlFor(user, user == r.firstUser(0) && (r.cfg.scenario == "paced" || r.cfg.scenario == "fanout"))
	for attempt := 0; ; attempt++ {
		c, err := r.dialer.dial(ctx, url, &r.counters)
		if err != nil {
			return nil, err
		}
		err = r.handshake(ctx, c, user, rooms)
		if err == nil {
			return c, nil
		}
		c.close()
		if !c.closed() || c.closeCode() == 0 || attempt == maxDropRetries || ctx.Err() != nil {
			return nil, err
		}
		r.serverDrops.Add(1)
	}
}

func (r *runner) handshake(ctx context.Context, c *conn, user int, rooms []string) error {
	if _, err := c.await(ctx, "connected", authWait); err != nil {
		return err
	}
	if err := r.signIn(ctx, c, user); err != nil {
		return err
	}
	for _, room := range rooms {
		if err := r.join(ctx, c, room); err != nil {
			return err
		}
	}
	return nil
}

// closeAll closes every open connection, many at a time.
func closeAll(conns []*conn) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.close()
		}()
	}
	wg.Wait()
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// window is the measured phase of a scenario: the server's and the
// tool's CPU time and the server's memory over it.
type window struct {
	r          *runner
	start      time.Time
	serverCPU  float64
	benchCPU   float64
	machineCPU float64
	profileErr chan error
}

// beginWindow starts measuring; with -cpuprofile it also starts a CPU
// profile of the server lasting d.
func (r *runner) beginWindow(ctx context.Context, d time.Duration) *window {
	w := &window{r: r, start: time.Now(), benchCPU: selfCPU()}
	w.machineCPU, _ = machineBusySeconds()
	r.res.Metrics["loadavg_1m_before"] = loadAverage()
	if r.cfg.pid > 0 {
		if st, err := readProc(r.cfg.pid); err == nil {
			w.serverCPU = st.CPUSeconds
		}
	}
	if r.cfg.cpuProf != "" && d > 0 {
		w.profileErr = make(chan error, 1)
		go func() { w.profileErr <- fetchCPUProfile(ctx, r.cfg.pprof, d, r.cfg.cpuProf) }()
	}
	return w
}

// end records the phase's CPU use and the server's memory and threads.
func (w *window) end() {
	r := w.r
	elapsed := time.Since(w.start).Seconds()
	bench := selfCPU() - w.benchCPU
	r.res.Metrics["bench_cpu_cores"] = bench / elapsed
	machine, err := machineBusySeconds()
	machine -= w.machineCPU
	if err == nil {
		r.res.Metrics["machine_cpu_cores"] = machine / elapsed
	}
	if r.cfg.pid > 0 {
		st, err := readProc(r.cfg.pid)
		if err != nil {
			r.res.note("server stats: %v", err)
		} else {
			server := st.CPUSeconds - w.serverCPU
			r.res.Metrics["server_cpu_cores"] = server / elapsed
			// What neither the server nor the tool used: other work on
			// the shared machine (and kernel work not charged to either).
			r.res.Metrics["other_cpu_cores"] = max(machine-server-bench, 0) / elapsed
			r.res.Metrics["server_rss_mb"] = float64(st.RSSKB) / 1024
			r.res.Metrics["server_peak_rss_mb"] = float64(st.PeakRSSKB) / 1024
			r.res.Metrics["server_threads"] = float64(st.Threads)
		}
	}
	if r.cfg.pprof != "" {
		if n, err := goroutines(r.cfg.pprof); err != nil {
			r.res.note("goroutines: %v", err)
		} else {
			r.res.Metrics["server_goroutines"] = float64(n)
		}
	}
	if r.cfg.heapProf != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := fetchHeapProfile(ctx, r.cfg.pprof, r.cfg.heapProf); err != nil {
			r.res.note("heap profile: %v", err)
		} else {
			r.res.note("server heap profile written to %s", r.cfg.heapProf)
		}
		cancel()
	}
	if w.profileErr != nil {
		if err := <-w.profileErr; err != nil {
			r.res.note("cpu profile: %v", err)
		} else {
			r.res.note("server CPU profile written to %s", r.cfg.cpuProf)
		}
	}
}

// selfCPU is the tool's own user+system CPU time in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
