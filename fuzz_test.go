package main

import (
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The seed corpora live in testdata/fuzz/<target>/ and run as ordinary
// tests in `go test ./...`; `go test -fuzz FuzzDispatch` explores further.

// FuzzDecodeFrame feeds arbitrary bytes to the frame decoder and to every
// payload type: it may refuse, never panic, and what it accepts is valid
// UTF-8 JSON with a type.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"type":"chat","data":{"roomId":"general","content":"hi"}}`))
	f.Add([]byte(`{"type":"auth","data":{"username":"a","password":"b","token":"c"}}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		fr, perr := decodeFrame(msg)
		if perr != nil {
			if perr.Code != codeBadRequest {
				t.Fatalf("decode error code %q", perr.Code)
			}
			return
		}
		if fr.Type == "" {
			t.Fatal("accepted a frame without a type")
		}
		for _, v := range []any{&authData{}, &roomData{}, &chatData{}, &privateData{}, &typingData{},
			&historyData{}, &readData{}, &changePasswordData{}} {
			if err := decodeData(fr, v); err != nil && err.Code != codeBadRequest {
				t.Fatalf("data error code %q", err.Code)
			}
		}
	})
}

// FuzzDispatch sends arbitrary frames to a real server over a real
// connection, then checks the server still answers on that connection
// (or closed it with a deliberate code) and keeps serving.
func FuzzDispatch(f *testing.F) {
	cfg := testConfig(f.TempDir())
	cfg.Limits.MessagesPerSecond, cfg.Limits.FramesPerSecond = 0, 0
	cfg.Limits.RoomsCreatedPerHour, cfg.Limits.RoomsPerUser = 0, 0
	cfg.Limits.SignInsPerMinute = 0 // every input signs the fuzzer in afresh
	cfg.Limits.FrameBytes = 16 << 10
	cfg.Limits.MessageChars = 3000
	ts := startServer(f, &cfg)
	peer := dial(f, ts.WSURL()).auth("fuzzpeer", "fuzzpeer-password")
	token := dial(f, ts.WSURL()).auth("fuzzer", "fuzzer-password").Token
	f.Add([]byte(`{"type":"private","data":{"targetUserId":"` + peer.UserID + `","content":"hi"}}`))

	f.Fuzz(func(t *testing.T, frame []byte) {
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]string{"token": token})
		c.await("authenticated")
		c.sendRaw(frame)
		c.send("rooms", nil)
		for {
			select {
			case fr := <-c.frames:
				if fr.Type == "rooms" {
					return
				}
				if fr.Type == "loggedOut" {
					// The fuzzer found logout; sign in afresh for the next input.
					token = dial(t, ts.WSURL()).auth("fuzzer", "fuzzer-password").Token
				}
			case <-c.closed:
				var ce *websocket.CloseError
				if !errors.As(c.closeErr, &ce) || (ce.Code != websocket.CloseNormalClosure && ce.Code != websocket.CloseMessageTooBig) {
					t.Fatalf("connection closed by %v after frame %q", c.closeErr, frame)
				}
				if status, _, _ := httpGet(t, ts.URL()+"/healthz"); status != 200 {
					t.Fatalf("healthz %d after frame %q", status, frame)
				}
				return
			case <-time.After(frameWait):
				t.Fatalf("no answer to rooms after frame %q", frame)
			}
		}
	})
}
