package main

// Benchmarks of the hot paths: a message append with its trim, a room
// broadcast through real melody sessions and sockets, and frame encoding
// and decoding. They measure; they assert no timing. Run them with
//
//	go test -run '^$' -bench . -benchtime 2s
//
// The load tool in bench/ measures the whole server over the network.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
)

// openBenchStore opens a store in a temporary directory that keeps
// 100 messages per conversation, parley's default.
func openBenchStore(b *testing.B) *Store {
	b.Helper()
	st, err := OpenStore(b.TempDir()+"/bench.db", StoreOptions{HistoryPerRoom: 100})
	if err != nil {
		b.Fatalf("open store: %v", err)
	}
	b.Cleanup(func() {
		if err := st.Close(); err != nil {
			b.Errorf("close store: %v", err)
		}
	})
	return st
}

// appendConcurrently appends n messages from senders goroutines, each
// sender writing to rooms[sender % len(rooms)], and returns the first error.
func appendConcurrently(st *Store, n, senders int, rooms []string) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex // guards first
		first error
	)
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				m := Message{RoomID: rooms[s%len(rooms)], SenderID: uint64(s + 1), SenderName: "bench",
					Content: strings.Repeat("x", 100), Time: time.Now()}
				if _, err := st.AppendMessage(context.Background(), m); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// BenchmarkStore_AppendMessage appends to rooms that already hold their
// 100 messages, so each append also trims one. With one sender every
// append is its own commit and fsync; with many, the group commit shares
// them.
func BenchmarkStore_AppendMessage(b *testing.B) {
	for _, tc := range []struct{ senders, rooms int }{{1, 1}, {64, 100}, {500, 100}} {
		b.Run(fmt.Sprintf("senders=%d/rooms=%d", tc.senders, tc.rooms), func(b *testing.B) {
			st := openBenchStore(b)
			rooms := make([]string, tc.rooms)
			for i := range rooms {
				rooms[i] = fmt.Sprintf("room-%d", i)
			}
			// Sender s (user s+1) writes to room s % rooms, of which the
			// commit checks it is a member.
			for s := range max(tc.senders, tc.rooms) {
				m := Member{UserID: uint64(s + 1), Name: fmt.Sprintf("bench%d", s)}
				if _, err := st.JoinRoom(rooms[s%len(rooms)], m, time.Now(), JoinLimits{}); err != nil {
					b.Fatalf("join: %v", err)
				}
			}
			if err := appendConcurrently(st, 100*tc.rooms, tc.rooms, rooms); err != nil {
				b.Fatalf("prefill: %v", err)
			}
			b.ResetTimer()
			if err := appendConcurrently(st, b.N, tc.senders, rooms); err != nil {
				b.Fatalf("append: %v", err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// benchRoom is a hub with one room whose members are real melody
// sessions, each read by a real WebSocket client that counts frames.
type benchRoom struct {
	hub      *Hub
	received []atomic.Int64 // frames each client has read
}

func newBenchRoom(b *testing.B, members int) *benchRoom {
	b.Helper()
	cfg := defaultConfig()
	m := newMelody(cfg, func(*http.Request) bool { return true })
	// Wired as the server wires it: batched writes and all.
	clients := make(chan *client, members)
	m.HandleConnect(func(s *melody.Session) {
		c := clientOf(s)
		c.sess = s
		clients <- c
	})
	m.HandleSentMessage(func(s *melody.Session, _ []byte) { clientOf(s).out.flushSent() })
	var bufferFull atomic.Int64
	m.HandleError(func(_ *melody.Session, err error) {
		if isBufferFull(err) {
			bufferFull.Add(1)
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &client{id: newClientID()}
		_ = m.HandleRequestWithKeys(batchingWriter{ResponseWriter: w, c: c}, r, map[string]any{clientKey: c})
	}))
	room := &benchRoom{hub: NewHub(slog.New(slog.DiscardHandler), cfg.Presence.BroadcastLimit), received: make([]atomic.Int64, members)}
	var readers sync.WaitGroup
	conns := make([]*websocket.Conn, 0, members)
	b.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		_ = m.Close()
		srv.Close()
		readers.Wait()
		if n := bufferFull.Load(); n > 0 {
			b.Errorf("%d frames hit a full send buffer", n)
		}
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	for i := range members {
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatalf("dial member %d: %v", i, err)
		}
		conns = append(conns, conn)
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
		c := <-clients
		c.user.Store(&account{ID: uint64(i + 1), Name: fmt.Sprintf("member%d", i)})
		room.hub.Attach(c, []string{"bench"}, []byte(`{"type":"authenticated","data":{}}`))
	}
	return room
}

// waitReceived waits until every client has read at least n frames.
func (r *benchRoom) waitReceived(b *testing.B, n int64) {
	deadline := time.Now().Add(30 * time.Second)
	for i := range r.received {
		for r.received[i].Load() < n {
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
	frame := marshalFrame("message", toMessageFrame(Message{Seq: 42, RoomID: "bench", SenderID: 1,
		SenderName: "member0", Content: strings.Repeat("x", 100), Time: time.Now(), ClientMsgID: "c-42"}))
	for _, members := range []int{10, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			room := newBenchRoom(b, members)
			room.waitReceived(b, 1) // the hello frame
			b.SetBytes(int64(len(frame) * members))
			b.ResetTimer()
			for i := 1; i <= b.N; i++ {
				room.hub.Broadcast("bench", frame, 0)
				if i%window == 0 {
					room.waitReceived(b, int64(1+i-window))
				}
			}
			room.waitReceived(b, int64(1+b.N))
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
	mf := toMessageFrame(Message{Seq: 42, RoomID: "general", SenderID: 1, SenderName: "alice",
		Content: strings.Repeat("x", 100), Time: time.Now(), ClientMsgID: "c-17"})
	b.ReportAllocs()
	for b.Loop() {
		_ = marshalFrame("message", mf)
	}
}
