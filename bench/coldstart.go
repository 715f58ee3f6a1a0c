package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// readyWait bounds how long a started server may take to become ready.
const readyWait = 60 * time.Second

// runColdStart times a server process from start to ready, -starts
// times. parley is ready when /healthz answers 200, on a database of
// -gen-rooms rooms of -gen-messages messages; the tutorial, which keeps
// nothing on disk, when a WebSocket client gets its "connected" frame.
func (r *runner) runColdStart(ctx context.Context) error {
	if r.cfg.target == "parley" {
		r.res.setLabel("coldstart %dx%d", r.cfg.genRooms, r.cfg.genMessages)
		r.res.Params["db"], r.res.Params["rooms"], r.res.Params["messages_per_room"] = r.cfg.coldDB, r.cfg.genRooms, r.cfg.genMessages
		if !fileExists(r.cfg.coldDB) {
			if err := r.generateColdDB(ctx); err != nil {
				return err
			}
		}
		fi, err := os.Stat(r.cfg.coldDB)
		if err != nil {
			return fmt.Errorf("cold database: %w", err)
		}
		r.res.Metrics["db_mb"] = float64(fi.Size()) / (1 << 20)
	} else {
		r.res.setLabel("coldstart %dx%d", r.cfg.genRooms, r.cfg.genMessages)
		r.res.note("the tutorial server keeps history in memory only: it starts empty, and a restart loses every message")
	}
	var times []float64
	for i := 0; i < r.cfg.starts; i++ {
		d, err := r.timeStart(ctx)
		if err != nil {
			return err
		}
		r.logf("start %d: ready after %.1f ms", i+1, d.Seconds()*1000)
		times = append(times, d.Seconds())
	}
	slices.Sort(times)
	r.res.Metrics["ready_s"] = median(times)
	r.res.Metrics["ready_min_s"] = times[0]
	r.res.Metrics["ready_max_s"] = times[len(times)-1]
	r.res.Params["starts"] = r.cfg.starts
	return nil
}

// server is a server process the tool started; stop ends it.
type server struct {
	cmd     *exec.Cmd
	port    int
	exited  chan struct{} // closed when the process has exited
	waitErr error         // how it exited; set before exited closes
	log     *os.File
}

// startServer starts parley or the tutorial on a free loopback port,
// parley on db.
func (r *runner) startServer(db string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("bench-coldstart-%d.log", port))
	if r.cfg.target == "parley" {
		cmd = exec.Command(r.cfg.parleyBin, "serve", "-addr", fmt.Sprintf("127.0.0.1:%d", port), "-db", db)
		cmd.Env = append(os.Environ(), "PARLEY_LOG_LEVEL=warn")
	} else {
		cmd = exec.Command(r.cfg.nodeBin, r.cfg.tutorialJS, r.cfg.tutorialDir)
		cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "HOST=127.0.0.1")
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create server log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// Run in an empty directory: parley reads config.yaml from its
	// working directory, and the run's settings come from the
	// environment (PARLEY_*) that run.sh sets.
	cmd.Dir = os.TempDir()
	s := &server{cmd: cmd, port: port, exited: make(chan struct{}), log: logf}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

// stop sends SIGTERM, waits for the process, and removes its log unless
// it failed.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-s.exited:
		err = s.waitErr
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		err = fmt.Errorf("server did not stop within 15s after SIGTERM (killed): %w", s.waitErr)
	}
	s.log.Close()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled() {
		err = nil // node exits on SIGTERM by the signal
	}
	if err == nil {
		os.Remove(s.log.Name())
		return nil
	}
	return fmt.Errorf("server exited: %w (log %s)", err, s.log.Name())
}

// timeStart starts the server once, times it to ready, and stops it.
func (r *runner) timeStart(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	s, err := r.startServer(r.cfg.coldDB)
	if err != nil {
		return 0, err
	}
	err = r.waitReady(ctx, s)
	took := time.Since(start)
	if serr := s.stop(); err == nil {
		err = serr
	}
	return took, err
}

// waitReady polls the server every 2 ms until it is ready.
func (r *runner) waitReady(ctx context.Context, s *server) error {
	deadline := time.Now().Add(readyWait)
	client := &http.Client{Timeout: time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", s.port)
	d := newDialer(fmt.Sprintf("ws://127.0.0.1:%d/", s.port), "", 1)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before it was ready: %v (log %s)", s.waitErr, s.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if r.cfg.target == "parley" {
			if resp, err := client.Get(url); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		} else if ws, _, err := d.ws.DialContext(ctx, d.urls[0], nil); err == nil {
			_, msg, err := ws.ReadMessage()
			ws.Close()
			if err == nil && len(msg) > 0 {
				return nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("server not ready within %s (log %s)", readyWait, s.log.Name())
}

// generateColdDB builds the cold-start database through the protocol:
// a parley started on a new file, -gen-users accounts each joining its
// share of -gen-rooms rooms and sending -gen-messages messages to each.
// The database is written under a temporary name and renamed when done.
func (r *runner) generateColdDB(ctx context.Context) error {
	tmp := r.cfg.coldDB + ".generating"
	os.Remove(tmp)
	start := time.Now()
	s, err := r.startServer(tmp)
	if err != nil {
		return err
	}
	err = r.waitReady(ctx, s)
	if err == nil {
		err = r.fillColdDB(ctx, s.port)
	}
	if serr := s.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("generate %s: %w", r.cfg.coldDB, err)
	}
	if err := os.Rename(tmp, r.cfg.coldDB); err != nil {
		return fmt.Errorf("generate %s: %w", r.cfg.coldDB, err)
	}
	r.res.Metrics["generate_s"] = time.Since(start).Seconds()
	r.res.note("generated %s through the protocol in %.0fs", r.cfg.coldDB, time.Since(start).Seconds())
	return nil
}

// genWindow is how many messages each generating account has in flight.
const genWindow = 16

func (r *runner) fillColdDB(ctx context.Context, port int) error {
	G, R, per := r.cfg.genUsers, r.cfg.genRooms, r.cfg.genMessages
	if R%G != 0 {
		return fmt.Errorf("-gen-rooms %d must be a multiple of -gen-users %d", R, G)
	}
	perUser := R / G
	gen := &runner{
		cfg:    r.cfg,
		log:    r.log,
		dialer: newDialer(fmt.Sprintf("ws://127.0.0.1:%d/ws", port), "", r.cfg.sources),
		accts:  &accounts{path: r.cfg.coldDB + ".accounts.json", tokens: map[string]string{}},
		res:    newResult(r.cfg),
	}
	roomsOf := func(k int) []string {
		rooms := make([]string, perUser)
		for j := range rooms {
			rooms[j] = fmt.Sprintf("cold-%05d", k*perUser+j)
		}
		return rooms
	}
	r.logf("generating: %d accounts join %d rooms each", G, perUser)
	conns, err := gen.connectAll(ctx, 0, G, roomsOf)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	defer os.Remove(gen.accts.path)

	// Every room has one member, so each message a connection receives
	// is its own acknowledgement and frees a slot of its window.
	tokens := make([]chan struct{}, G)
	index := map[*conn]int{}
	for k, c := range conns {
		tokens[k] = make(chan struct{}, genWindow)
		for range genWindow {
			tokens[k] <- struct{}{}
		}
		index[c] = k
	}
	var acked atomic.Int64
	fn := messageFunc(func(c *conn, _ int, _ uint64, _, _ int64) {
		acked.Add(1)
		tokens[index[c]] <- struct{}{}
	})
	for _, c := range conns {
		c.onMessage.Store(&fn)
	}
	total := int64(R * per)
	r.logf("generating: sending %d messages", total)
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.logf("  %d/%d messages stored", acked.Load(), total)
			case <-done:
				return
			}
		}
	}()
	err = forEach(ctx, G, G, func(ctx context.Context, k int) error {
		rooms := roomsOf(k)
		buf := make([]byte, 0, r.cfg.size+128)
		for i := 0; i < perUser*per; i++ {
			select {
			case <-tokens[k]:
			case <-ctx.Done():
				return ctx.Err()
			}
			buf = appendChat(buf[:0], rooms[i%perUser], k, uint64(i), time.Now().UnixNano(), r.cfg.size)
			if err := conns[k].write(buf); err != nil {
				return err
			}
		}
		for range genWindow {
			select {
			case <-tokens[k]:
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(drainWait):
				return fmt.Errorf("generator %d: acknowledgements stopped", k)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.logf("generating: %d messages stored", acked.Load())
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
