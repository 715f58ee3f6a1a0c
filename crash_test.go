package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	bolt "go.etcd.io/bbolt"
)

// builtBinary builds the parley binary once per test run.
var builtBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "parley-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "parley")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// process is the parley binary running as a child process.
type process struct {
	cmd *exec.Cmd
	url string // http://127.0.0.1:PORT/
}

// startProcess runs the binary on a random loopback port with the given
// database and extra environment, and waits until it prints its URL.
func startProcess(t *testing.T, db string, env ...string) *process {
	t.Helper()
	bin, err := builtBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "-addr", "127.0.0.1:0", "-db", db)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	re := regexp.MustCompile(`open (http://\S+/) in your browser`)
	lines := bufio.NewScanner(stdout)
	found := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if m := re.FindStringSubmatch(lines.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case url := <-found:
		return &process{cmd: cmd, url: url}
	case <-time.After(90 * time.Second): // a cluster node first waits for the cluster to form
		t.Fatal("parley did not print its URL within 90s")
		return nil
	}
}

func (p *process) wsURL() string { return "ws" + p.url[len("http"):] + "ws" }

// TestCrash_KillLosesNoAcknowledgedMessage sends messages from several
// clients, kills the server with SIGKILL at varying moments, restarts it,
// and checks that every acknowledged message is in history exactly once
// and in order, and that the database passes bbolt's consistency check.
func TestCrash_KillLosesNoAcknowledgedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; skipped with -short")
	}
	db := filepath.Join(t.TempDir(), "crash.db")
	env := []string{"PARLEY_HISTORY_PER_ROOM=0", "PARLEY_LIMITS_MESSAGES_PER_SECOND=0", "PARLEY_AUTH_SIGNUPS_PER_IP_PER_HOUR=0",
		"PARLEY_AUTH_REGISTRATION=open"}
	const clients = 4
	acked := make([]map[string]uint64, clients) // per client: clientMsgId -> seq
	for i := range acked {
		acked[i] = map[string]uint64{}
	}
	next := make([]int, clients) // per client: next message number
	rng := rand.New(rand.NewPCG(1, 2))

	for round := 0; round < 5; round++ {
		p := startProcess(t, db, env...)
		var wg sync.WaitGroup
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sendUntilKilled(t, p.wsURL(), i, &next[i], acked[i])
			}()
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.cmd.Wait()
		wg.Wait()
	}

	// Restart once more and read everything back.
	p := startProcess(t, db, env...)
	total := 0
	for i := 0; i < clients; i++ {
		c := dial(t, p.wsURL())
		c.auth(fmt.Sprintf("crasher%d", i), "crasher-password")
		msgs := allHistory(t, c, fmt.Sprintf("crash-room-%d", i))
		seen := map[string]int{}
		lastN := -1
		for _, m := range msgs {
			seen[m.ClientMsgID]++
			if seen[m.ClientMsgID] > 1 {
				t.Fatalf("client %d: message %s stored twice", i, m.ClientMsgID)
			}
			var ci, n int
			if _, err := fmt.Sscanf(m.ClientMsgID, "%d-%d", &ci, &n); err != nil || ci != i {
				t.Fatalf("client %d: unexpected message %+v", i, m)
			}
			if n <= lastN {
				t.Fatalf("client %d: message %d stored after %d", i, n, lastN)
			}
			lastN = n
		}
		for id, seq := range acked[i] {
			if seen[id] != 1 {
				t.Fatalf("client %d: acknowledged message %s (seq %d) is missing after the crash", i, id, seq)
			}
		}
		total += len(acked[i])
	}
	if total == 0 {
		t.Fatal("no message was acknowledged; the test proved nothing")
	}
	t.Logf("%d acknowledged messages over 5 kills, all present exactly once", total)

	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	bdb, err := bolt.Open(db, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("bbolt check after SIGKILL: %v", err)
	}
}

// sendUntilKilled signs in as crasherN, joins its room and sends numbered
// messages until the connection dies, recording each acknowledgement.
// Numbers never repeat across rounds: a message sent but not acknowledged
// may still have been committed.
func sendUntilKilled(t *testing.T, url string, i int, next *int, acked map[string]uint64) {
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return // killed before we connected
	}
	defer conn.Close()
	room := fmt.Sprintf("crash-room-%d", i)
	var wmu sync.Mutex
	send := func(typ string, data any) error {
		wmu.Lock()
		defer wmu.Unlock()
		return conn.WriteJSON(map[string]any{"type": typ, "data": data})
	}
	if send("auth", map[string]string{"username": fmt.Sprintf("crasher%d", i), "password": "crasher-password"}) != nil ||
		send("join", map[string]string{"roomId": room}) != nil {
		return
	}
	// The reader records acknowledgements until the server dies.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var f Frame
			if err := conn.ReadJSON(&f); err != nil {
				return
			}
			if f.Type == "message" {
				var m messageFrame
				decodeInto(t, f, &m)
				acked[m.ClientMsgID] = m.Seq
			}
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		n := *next
		*next = n + 1
		if send("chat", map[string]string{"roomId": room, "content": fmt.Sprintf("message %d", n), "clientMsgId": fmt.Sprintf("%d-%d", i, n)}) != nil {
			<-done
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// allHistory pages back through a room's whole retained history.
func allHistory(t *testing.T, c *wsClient, room string) []messageFrame {
	t.Helper()
	var all []messageFrame
	before := ""
	for {
		c.send("history", map[string]any{"roomId": room, "before": before, "limit": maxHistoryPage})
		var h historyOutData
		decodeInto(t, c.await("history"), &h)
		all = append(h.Messages, all...)
		if !h.HasMore || len(h.Messages) == 0 {
			return all
		}
		before = h.Messages[0].ID
	}
}

// TestProcess_SIGTERM stops the real binary with SIGTERM: connections
// close with 1001 and the process exits 0.
func TestProcess_SIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	p := startProcess(t, filepath.Join(t.TempDir(), "term.db"))
	c := dial(t, p.wsURL())
	c.auth("leaver", "leaver-password")
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := c.waitClosed(5 * time.Second)
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("client saw %v, want close 1001", err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", err)
	}
	t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
}
