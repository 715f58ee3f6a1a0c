package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawUpload starts an upload by hand on its own connection: the request
// line and headers, declaring length bytes, and first of the body.
func rawUpload(t *testing.T, ts *testServer, token string, length int64, first string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /upload?name=slow.bin HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		ts.addr, token, length, first)
	return conn
}

// readStatus reads the HTTP status of a raw upload's answer.
func readStatus(t *testing.T, conn net.Conn, within time.Duration) int {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the upload within %s: %v", within, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestUploads_DeclaredLengthRefusedAtOnce: a Content-Length over
// uploads.max_bytes is refused before a byte of the body is read, instead
// of waiting for a body that never comes.
func TestUploads_DeclaredLengthRefusedAtOnce(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	_, a := signedIn(t, ts, "liar")
	conn := rawUpload(t, ts, a.Token, 99_999_999_999, "0123456789")
	if got := readStatus(t, conn, 3*time.Second); got != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared 99,999,999,999 bytes: HTTP %d, want 413", got)
	}
}

// TestUploads_TricklesHoldNoSlots: one user starts four uploads that
// declare 1 MB and send a byte every 200 ms. Another user's small upload
// goes through at once (the trickler holds one slot, not all four), and
// every trickle is cut off with 408 for arriving too slowly.
func TestUploads_TricklesHoldNoSlots(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Uploads.MinBytesPerSecond = 64 << 10 // the 64 KiB of slack last 1 s
	ts := startServer(t, &cfg)
	_, slow := signedIn(t, ts, "trickler")
	_, victim := signedIn(t, ts, "victim")

	started := time.Now()
	conns := make([]net.Conn, 4)
	for i := range conns {
		conns[i] = rawUpload(t, ts, slow.Token, 1_000_000, "x")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 { // 20 s at most
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	waitFor(t, "a trickle to take an upload slot", func() bool { return len(ts.srv.uploads.slots) > 0 })
	begin := time.Now()
	req, _ := http.NewRequest(http.MethodPost, ts.URL()+"/upload?name=hello.txt", strings.NewReader("hello"))
	req.Header.Set("Authorization", "Bearer "+victim.Token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("the victim's upload beside the trickles: %v", err)
	}
	resp.Body.Close()
	took := time.Since(begin)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("the victim's upload: HTTP %d", resp.StatusCode)
	}
	if took > 2*time.Second {
		t.Fatalf("the victim's 5-byte upload took %s behind the trickles", took)
	}
	cut := 0
	for _, c := range conns {
		if got := readStatus(t, c, 10*time.Second); got == http.StatusRequestTimeout {
			cut++
		}
	}
	if cut == 0 {
		t.Fatal("no trickling upload was cut off for its rate")
	}
	t.Logf("a 5-byte upload took %s beside 4 trickling ones; %d trickles cut with 408 within %s",
		took.Round(time.Millisecond), cut, time.Since(started).Round(100*time.Millisecond))
}
