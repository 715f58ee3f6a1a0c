package main

// Benchmarks of the hot paths: a room broadcast through real melody
// sessions and sockets, and frame encoding and decoding (the store's
// group commit is benchmarked in internal/store). They measure; they assert no timing. Run them with
//
//	go test -run '^$' -bench . -benchtime 2s
//
// The load tool in bench/ measures the whole server over the network.

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"parley/internal/store"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// benchRoom is a hub with one room whose members are real melody
// sessions, each read by a real WebSocket client that counts frames.
type benchRoom struct {
	hub      *Hub
	received []atomic.Int64 // frames each client has read
	base     []int64        // what each had read before the benchmark
}

func newBenchRoom(b *testing.B, members int) *benchRoom {
	b.Helper()
	cfg := defaultConfig()
	// Wired as the server wires it: melody, batched writes and all.
	hub := NewHub(HubConfig{FrameBytes: cfg.Limits.FrameBytes, SendBuffer: cfg.Server.SendBuffer, WriteWait: cfg.Server.WriteWait,
		PongWait: cfg.Server.PongWait, PresenceLimit: cfg.Presence.BroadcastLimit, CheckOrigin: func(*http.Request) bool { return true }},
		slog.New(slog.DiscardHandler), newMetrics())
	conns := make(chan *Conn, members)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = hub.Serve(w, r, "127.0.0.1", func(c *Conn) ConnHandler { conns <- c; return nopHandler{} })
	}))
	room := &benchRoom{hub: hub, received: make([]atomic.Int64, members)}
	var readers sync.WaitGroup
	clients := make([]*websocket.Conn, 0, members)
	b.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
		hub.Close()
		srv.Close()
		readers.Wait()
		hub.Wait()
		if n := counterValue(hub.metrics.slowConsumers); n > 0 {
			b.Errorf("%v connections were dropped as slow consumers", n)
		}
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	for i := range members {
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatalf("dial member %d: %v", i, err)
		}
		clients = append(clients, conn)
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				if _, _, err := conn.NextReader(); err != nil {
					return
				}
				room.received[i].Add(1)
			}
		}()
		c := <-conns
		who := identity{userID: uint64(i + 1), name: fmt.Sprintf("member%d", i)}
		hello := func([]userRef) []byte { return []byte(`{"type":"authenticated","data":{}}`) }
		if !hub.SignIn(c, who, []string{"bench"}, nil, hello, 0) {
			b.Fatalf("sign in member %d", i)
		}
	}
	return room
}

// nopHandler ignores what a benchmark's clients send.
type nopHandler struct{}

func (nopHandler) Frame([]byte)  {}
func (nopHandler) Binary([]byte) {}
func (nopHandler) Closed()       {}

// waitReceived waits until every client has read at least n frames
// beyond its base.
func (r *benchRoom) waitReceived(b *testing.B, n int64) {
	deadline := time.Now().Add(30 * time.Second)
	for i := range r.received {
		base := int64(0)
		if r.base != nil {
			base = r.base[i]
		}
		for r.received[i].Load() < base+n {
			if time.Now().After(deadline) {
				b.Fatalf("client %d read %d of %d frames", i, r.received[i].Load(), n)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// BenchmarkHub_Broadcast sends one message frame to a room: an op is one
// broadcast delivered to every member's socket and read by its client.
// At most 64 broadcasts are outstanding, well inside the send buffer.
func BenchmarkHub_Broadcast(b *testing.B) {
	const window = 64
	msg := store.Message{Seq: 42, RoomID: "bench", SenderID: 1, SenderName: "member0", Content: strings.Repeat("x", 100),
		Time: time.Now(), ClientMsgID: "c-42"}
	frame := marshalFrame("message", toMessageFrame(msg))
	batch := store.Batch{Applied: []store.Applied{{Events: []store.Event{store.MessagePosted{Message: msg}}}}}
	for _, members := range []int{10, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			room := newBenchRoom(b, members)
			// connected, authenticated, and presence: the first member
			// hears everyone else come online.
			room.waitReceived(b, 2)
			start := make([]int64, members)
			for i := range start {
				start[i] = room.received[i].Load()
			}
			room.base = start
			b.SetBytes(int64(len(frame) * members))
			b.ResetTimer()
			for i := 1; i <= b.N; i++ {
				room.hub.Deliver(batch)
				if i%window == 0 {
					room.waitReceived(b, int64(i-window))
				}
			}
			room.waitReceived(b, int64(b.N))
			b.ReportMetric(float64(b.N*members)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkDecodeFrame decodes a typical chat frame and its data.
func BenchmarkDecodeFrame(b *testing.B) {
	msg := []byte(`{"type":"chat","data":{"roomId":"general","content":"` + strings.Repeat("x", 100) + `","clientMsgId":"c-17"}}`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		f, perr := decodeFrame(msg)
		if perr != nil {
			b.Fatal(perr)
		}
		var d chatData
		if perr := decodeData(f, &d); perr != nil {
			b.Fatal(perr)
		}
	}
}

// BenchmarkMarshalFrame encodes a message frame, once per delivered
// message (not per recipient).
func BenchmarkMarshalFrame(b *testing.B) {
	mf := toMessageFrame(store.Message{Seq: 42, RoomID: "general", SenderID: 1, SenderName: "alice",
		Content: strings.Repeat("x", 100), Time: time.Now(), ClientMsgID: "c-17"})
	b.ReportAllocs()
	for b.Loop() {
		_ = marshalFrame("message", mf)
	}
}

// counterValue reads a Prometheus counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
