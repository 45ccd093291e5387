package proxy

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
)

// frames is a client's byte stream: the preface, then frames written by
// x/net's Framer.
func frames(t testing.TB, n int, reset bool) []byte {
	var b bytes.Buffer
	b.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&b, nil)
	_ = fr.WriteSettings()
	for i := range n {
		id := uint32(2*i + 1)
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0x82}, EndHeaders: true})
		_ = fr.WriteData(id, true, bytes.Repeat([]byte{'x'}, i%300))
		if reset {
			_ = fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}
	}
	return b.Bytes()
}

// FuzzH2Guard: however the client's bytes are split into reads, the guard
// counts the same frames as when it reads them in one piece, and it never
// panics on arbitrary bytes.
func FuzzH2Guard(f *testing.F) {
	f.Add(frames(f, 5, false), uint16(7))
	f.Add(frames(f, 3, true), uint16(1))
	f.Add([]byte(http2.ClientPreface+"\x00\x00\x04\x03\x00\x00\x00\x00\x01\x00\x00\x00\x08"), uint16(3))
	f.Fuzz(func(t *testing.T, b []byte, step uint16) {
		whole := &h2Guard{preface: len(h2Preface)}
		whole.scan(b)
		parts := &h2Guard{preface: len(h2Preface)}
		k := int(step%64) + 1
		for i := 0; i < len(b); i += k {
			parts.scan(b[i:min(i+k, len(b))])
		}
		if whole.headers != parts.headers || whole.resets != parts.resets {
			t.Fatalf("split reads counted %d/%d frames, whole %d/%d", parts.headers, parts.resets, whole.headers, whole.resets)
		}
	})
}

func TestH2GuardCounts(t *testing.T) {
	g := &h2Guard{preface: len(h2Preface)}
	if g.scan(frames(t, 50, false)) || g.headers != 50 || g.resets != 0 {
		t.Fatalf("50 completed streams: tripped or miscounted (%d headers, %d resets)", g.headers, g.resets)
	}
	g = &h2Guard{preface: len(h2Preface)}
	if g.scan(frames(t, h2ResetMin-1, true)) {
		t.Fatal("tripped below h2ResetMin")
	}
	if !g.scan(frames(t, 1, true)[len(http2.ClientPreface)+9:]) { // one more reset stream, no preface, no SETTINGS
		t.Fatal("did not trip at h2ResetMin resets, none completed")
	}
}
