package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// writeWait bounds one frame write; a server that does not read for this
// long has failed the run.
const writeWait = 10 * time.Second

// frame is a server frame kept for a handshake step.
type frame struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// serverError is an "error" frame the server answered with.
type serverError struct {
	Code       string  `json:"code"`
	Message    string  `json:"message"`
	RetryAfter float64 `json:"retryAfter"`
}

func (e *serverError) Error() string {
	if e.Code == "" {
		return "server error: " + e.Message
	}
	return fmt.Sprintf("server error %s: %s", e.Code, e.Message)
}

// messageFunc receives a bench message: the sending sender's index and
// sequence number, when it was sent (Unix ns) and when it arrived.
type messageFunc func(c *conn, sender int, seq uint64, sent, now int64)

// frameCounters count frames other than bench messages, by kind, over
// all connections.
type frameCounters struct {
	presence atomic.Int64 // userOnline, userOffline
	roomUser atomic.Int64 // userJoined, userLeft
	errors   atomic.Int64 // error frames outside a handshake step
	other    atomic.Int64
}

// conn is one bench connection. Its read loop runs from the dial until
// the connection closes, so the server never sees a client that stopped
// reading (parley disconnects those); handshake steps wait on ctrl.
type conn struct {
	user   int    // bench account index
	name   string // username
	userID string // the server's id: parley's user id, the tutorial's clientId
	rooms  map[string]bool

	ws  *websocket.Conn
	wmu sync.Mutex // serialises writes

	ctrl      chan frame // authenticated, joined, error, ... while a step waits
	onMessage atomic.Pointer[messageFunc]
	counters  *frameCounters
	delivered atomic.Int64 // bench messages from others, counted by the handler

	done     chan struct{} // closed when the read loop ends
	closeErr error         // why it ended; set before done closes
	buf      []byte
}

// dialer opens connections, spreading them over several loopback source
// addresses so the ephemeral port range is not a limit, and over the
// servers listed (the nodes of a cluster) by user.
type dialer struct {
	urls    []string
	sender  string // with -sender-url: the one-room scenarios' sender's server
	sources []net.IP
	next    atomic.Uint32
	ws      websocket.Dialer
	retries atomic.Int64 // dial attempts that failed and were retried
}

func newDialer(urls, sender string, sources int) *dialer {
	d := &dialer{urls: strings.Split(urls, ","), sender: sender}
	for i := 1; i <= sources; i++ {
		d.sources = append(d.sources, net.IPv4(127, 0, 0, byte(i)))
	}
	d.ws = websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			src := d.sources[int(d.next.Add(1))%len(d.sources)]
			nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
			return nd.DialContext(ctx, network, addr)
		},
	}
	return d
}

// urlFor is the server user connects to: the sender's, or one of the
// servers by turns.
func (d *dialer) urlFor(user int, sender bool) string {
	if sender && d.sender != "" {
		return d.sender
	}
	return d.urls[user%len(d.urls)]
}

// dial connects to url, retrying transient failures (a full accept queue,
// a busy port) a few times with backoff, and starts the read loop.
func (d *dialer) dial(ctx context.Context, url string, counters *frameCounters) (*conn, error) {
	var lastErr error
	backoff := 50 * time.Millisecond
	for attempt := 0; attempt < 6; attempt++ {
		if attempt > 0 {
			d.retries.Add(1)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			backoff *= 2
		}
		ws, resp, err := d.ws.DialContext(ctx, url, nil)
		if err == nil {
			c := &conn{ws: ws, ctrl: make(chan frame, 16), counters: counters, done: make(chan struct{}), buf: make([]byte, 0, 1024)}
			go c.readLoop()
			return c, nil
		}
		if resp != nil {
			lastErr = fmt.Errorf("dial %s: %w (HTTP %d)", url, err, resp.StatusCode)
			if resp.StatusCode >= 400 && resp.StatusCode < 500 {
				return nil, lastErr // refused on purpose: retrying will not help
			}
		} else {
			lastErr = fmt.Errorf("dial %s: %w", url, err)
		}
		if ctx.Err() != nil {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

var (
	messagePrefix = []byte(`{"type":"message","data":`)
	contentMarker = []byte(`"content":"m`)
	// Presence frames can number millions during setup against the
	// tutorial server (it tells everyone of every sign-in); they are
	// counted by prefix, without decoding.
	presencePrefixes = [][]byte{[]byte(`{"type":"userOnline"`), []byte(`{"type":"userOffline"`)}
	roomUserPrefixes = [][]byte{[]byte(`{"type":"userJoined"`), []byte(`{"type":"userLeft"`)}
)

func hasAnyPrefix(b []byte, prefixes [][]byte) bool {
	for _, p := range prefixes {
		if bytes.HasPrefix(b, p) {
			return true
		}
	}
	return false
}

// controlTypes are the frames a handshake step may wait for.
var controlTypes = map[string]bool{
	"connected": true, "authenticated": true, "joined": true, "left": true, "error": true,
	"history": true, "rooms": true, "loggedOut": true,
}

func (c *conn) readLoop() {
	defer close(c.done)
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			c.closeErr = err
			return
		}
		c.buf, err = readInto(c.buf[:0], r)
		if err != nil {
			c.closeErr = err
			return
		}
		c.handle(c.buf, time.Now().UnixNano())
	}
}

// readInto appends everything r yields to buf, growing it as needed.
func readInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// handle classifies one frame. Bench messages take a fast path that
// reads only the content; other frames are decoded.
func (c *conn) handle(msg []byte, now int64) {
	if bytes.HasPrefix(msg, messagePrefix) {
		if fn := c.onMessage.Load(); fn != nil {
			if sender, seq, sent, ok := parseContent(msg); ok {
				(*fn)(c, sender, seq, sent, now)
			}
		}
		return
	}
	if hasAnyPrefix(msg, presencePrefixes) {
		c.counters.presence.Add(1)
		return
	}
	if hasAnyPrefix(msg, roomUserPrefixes) {
		c.counters.roomUser.Add(1)
		return
	}
	var f frame
	if err := json.Unmarshal(msg, &f); err != nil {
		c.counters.other.Add(1)
		return
	}
	switch f.Type {
	case "userOnline", "userOffline":
		c.counters.presence.Add(1)
		return
	case "userJoined", "userLeft":
		c.counters.roomUser.Add(1)
		return
	}
	if !controlTypes[f.Type] {
		c.counters.other.Add(1)
		return
	}
	select {
	case c.ctrl <- f:
	default:
		// Nobody is waiting: an error for a chat frame, say.
		if f.Type == "error" {
			c.counters.errors.Add(1)
		}
	}
}

// contentPrefix builds the start of a bench message's content:
// m<sender>.<seq>.<sent unix ns>.
func appendContent(b []byte, sender int, seq uint64, sent int64, size int) []byte {
	start := len(b)
	b = append(b, 'm')
	b = strconv.AppendInt(b, int64(sender), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, sent, 10)
	b = append(b, '.')
	for len(b)-start < size {
		b = append(b, 'x')
	}
	return b
}

// parseContent reads sender, sequence and send time back out of a
// message frame.
func parseContent(msg []byte) (sender int, seq uint64, sent int64, ok bool) {
	i := bytes.Index(msg, contentMarker)
	if i < 0 {
		return 0, 0, 0, false
	}
	p := msg[i+len(contentMarker):]
	var nums [3]uint64
	for k := range nums {
		j := 0
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			nums[k] = nums[k]*10 + uint64(p[j]-'0')
			j++
		}
		if j == 0 || j >= len(p) || p[j] != '.' {
			return 0, 0, 0, false
		}
		p = p[j+1:]
	}
	return int(nums[0]), nums[1], int64(nums[2]), true
}

// write sends one text frame.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("write to %s: %w", c.name, err)
	}
	return nil
}

// send marshals and writes a client frame.
func (c *conn) send(typ string, data any) error {
	raw, err := json.Marshal(map[string]any{"type": typ, "data": data})
	if err != nil {
		return fmt.Errorf("marshal %s: %w", typ, err)
	}
	return c.write(raw)
}

// await waits for a control frame of the given type; an error frame
// ends the wait with a *serverError.
func (c *conn) await(ctx context.Context, typ string, wait time.Duration) (frame, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case f := <-c.ctrl:
			if f.Type == typ {
				return f, nil
			}
			if f.Type == "error" {
				se := &serverError{}
				if err := json.Unmarshal(f.Data, se); err != nil {
					se.Message = string(f.Data)
				}
				return f, se
			}
		case <-c.done:
			return frame{}, fmt.Errorf("connection closed while waiting for %s: %w", typ, c.closeErr)
		case <-t.C:
			return frame{}, fmt.Errorf("no %s frame within %s", typ, wait)
		case <-ctx.Done():
			return frame{}, ctx.Err()
		}
	}
}

// close closes the connection and waits for its read loop.
func (c *conn) close() {
	c.wmu.Lock()
	c.ws.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.wmu.Unlock()
	_ = c.ws.Close()
	<-c.done
}

// drop cuts the TCP connection without a close frame, as a network
// failure would, and waits for the read loop.
func (c *conn) drop() {
	_ = c.ws.NetConn().Close()
	<-c.done
}

// closed reports whether the read loop has ended.
func (c *conn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// closeCode is the close code the server sent, or 0.
func (c *conn) closeCode() int {
	var ce *websocket.CloseError
	if errors.As(c.closeErr, &ce) {
		return ce.Code
	}
	return 0
}
