package decode

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/vaneproxy/vane/configs"
)

// sse builds an event stream from chunk bodies, "data: [DONE]" included
// when given.
func sse(chunks ...string) string {
	var b strings.Builder
	for _, c := range chunks {
		b.WriteString("data: " + c + "\n\n")
	}
	return b.String()
}

// Streams as the toy model sends them.
var (
	chatStream = sse(
		`{"choices":[{"delta":{"content":"iris ","role":"assistant"},"finish_reason":null,"index":0}],"id":"chatcmpl-toy-2","model":"iris-v2","object":"chat.completion.chunk"}`,
		`{"choices":[{"delta":{"content":"v2 "},"finish_reason":null,"index":0}],"id":"chatcmpl-toy-2","model":"iris-v2","object":"chat.completion.chunk"}`,
		`{"choices":[{"delta":{"content":"dit: héllo"},"finish_reason":null,"index":0}],"id":"chatcmpl-toy-2","model":"iris-v2","object":"chat.completion.chunk"}`,
		`{"choices":[{"delta":{},"finish_reason":"stop","index":0}],"id":"chatcmpl-toy-2","model":"iris-v2","object":"chat.completion.chunk"}`,
		`{"choices":[],"id":"chatcmpl-toy-2","model":"iris-v2","object":"chat.completion.chunk","usage":{"prompt_tokens":1,"completion_tokens":12,"total_tokens":13}}`,
		`[DONE]`)
	completionStream = sse(
		`{"choices":[{"finish_reason":null,"index":0,"text":"iris "}],"id":"cmpl-toy-1","model":"iris-v2","object":"text_completion"}`,
		`{"choices":[{"finish_reason":null,"index":0,"text":"v2"}],"id":"cmpl-toy-1","model":"iris-v2","object":"text_completion"}`,
		`{"choices":[{"finish_reason":"length","index":0,"text":""}],"id":"cmpl-toy-1","model":"iris-v2","object":"text_completion"}`,
		`{"choices":[],"id":"cmpl-toy-1","model":"iris-v2","object":"text_completion","usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}`,
		`[DONE]`)
)

func TestOpenAI(t *testing.T) {
	tests := []struct {
		name      string
		req, resp string
		respCT    string
		status    int
		ttfb, lat time.Duration
		want      []Row
	}{
		{"chat, JSON answer",
			`{"model": "iris", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "héllo"}]}`,
			`{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"iris v2 says hello.","role":"assistant"}}],"model":"iris-v2","object":"chat.completion","usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`,
			"application/json", 200, 20 * time.Millisecond, 1500 * time.Millisecond,
			[]Row{{Features: fs(c("model", "iris"), n("prompt_chars", 13), n("prompt_tokens", 3), n("completion_tokens", 4),
				c("finish_reason", "stop"), n("ttfb_seconds", 0.02), n("latency_seconds", 1.5)),
				Predictions: fs(n("completion_chars", 19))}}},
		{"completions, JSON answer, prompt list, n=2",
			`{"model": "iris", "prompt": ["a b", "c"], "n": 2}`,
			`{"choices":[{"index":0,"text":"one","finish_reason":"length"},{"index":1,"text":"three","finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":8}}`,
			"application/json", 200, 0, 0,
			[]Row{{Features: fs(c("model", "iris"), n("prompt_chars", 4), n("prompt_tokens", 3), n("completion_tokens", 8), c("finish_reason", "length")),
				Predictions: fs(n("completion_chars", 8))}}},
		{"chat stream with usage chunk",
			`{"model": "iris", "stream": true, "messages": [{"role": "user", "content": [{"type": "text", "text": "one two"}, {"type": "image_url", "image_url": {"url": "data:..."}}]}]}`,
			chatStream, "text/event-stream; charset=utf-8", 200, 5 * time.Millisecond, 0,
			[]Row{{Features: fs(c("model", "iris"), n("prompt_chars", 7), n("prompt_tokens", 1), n("completion_tokens", 12),
				c("finish_reason", "stop"), n("ttfb_seconds", 0.005)),
				Predictions: fs(n("completion_chars", 18))}}},
		{"completions stream, CRLF, comments, no content type",
			`{"prompt": "hello there", "stream": true}`,
			": keep-alive\r\n\r\n" + strings.ReplaceAll(completionStream, "\n", "\r\n"), "", 200, 0, 0,
			[]Row{{Features: fs(n("prompt_chars", 11), n("prompt_tokens", 2), n("completion_tokens", 2), c("finish_reason", "length")),
				Predictions: fs(n("completion_chars", 7))}}},
		{"truncated stream without usage: no token counts",
			`{"model": "m", "prompt": "hi", "stream": true}`,
			sse(`{"choices":[{"index":0,"text":"abc","finish_reason":null}]}`) + `data: {"choices":[{"index":0,"te`,
			"text/event-stream", 200, 0, 0,
			[]Row{{Features: fs(c("model", "m"), n("prompt_chars", 2)), Predictions: fs(n("completion_chars", 3))}}},
		{"event split over data lines, event field, last event unterminated",
			`{"prompt": "x"}`,
			"event: message\ndata: {\"choices\":[{\"index\":0,\ndata: \"text\":\"ab\"}]}\n\nid: 3\ndata:{\"choices\":[{\"index\":0,\"text\":\"c\",\"finish_reason\":\"stop\"}]}",
			"text/event-stream", 200, 0, 0,
			[]Row{{Features: fs(n("prompt_chars", 1), c("finish_reason", "stop")), Predictions: fs(n("completion_chars", 3))}}},
		{"token-id prompt has no prompt_chars",
			`{"model": "m", "prompt": [[1, 2, 3]]}`,
			`{"choices":[{"index":0,"text":"ok","finish_reason":"stop"}]}`,
			"application/json", 200, 0, 0,
			[]Row{{Features: fs(c("model", "m"), c("finish_reason", "stop")), Predictions: fs(n("completion_chars", 2))}}},
		{"error answer: request features only",
			`{"model": "gpt-4", "prompt": "hi"}`,
			`{"error": {"message": "model not found"}}`,
			"application/json", 404, 0, 3 * time.Millisecond,
			[]Row{{Features: fs(c("model", "gpt-4"), n("prompt_chars", 2), n("latency_seconds", 0.003))}}},
		{"no request body",
			``, `{"choices":[{"index":0,"message":{"content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]}`,
			"application/json", 200, 0, 0,
			[]Row{{Features: fs(c("finish_reason", "tool_calls")), Predictions: fs(n("completion_chars", 0))}}},
		{"nothing at all", ``, ``, "", 200, 0, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := exchange(tc.req, tc.resp)
			in.Path = "/v1/chat/completions"
			in.RespContentType, in.Status, in.TTFB, in.Latency = tc.respCT, tc.status, tc.ttfb, tc.lat
			assert.Equal(t, tc.want, decodeOK(t, &Spec{Protocol: configs.ProtocolOpenAI}, in))
		})
	}
}

func TestOpenAIMalformed(t *testing.T) {
	okReq, okResp := `{"prompt": "hi"}`, `{"choices":[{"index":0,"text":"ok"}]}`
	tests := []struct{ name, req, resp, ct string }{
		{"truncated request", `{"prompt": "secret-token-123`, okResp, ""},
		{"request not an object", `["secret-token-123"]`, okResp, ""},
		{"model not a string", `{"model": {"secret": 1}, "prompt": "x"}`, okResp, ""},
		{"truncated answer", okReq, `{"choices":[{"index":0,"text":"secret-token-123`, "application/json"},
		{"content not text", okReq, `{"choices":[{"index":0,"message":{"content":7}}]}`, "application/json"},
		{"invalid chunk mid-stream", okReq, sse(`{"choices": secret-token-123}`, `{"choices":[]}`), "text/event-stream"},
		{"stream without events", okReq, "secret-token-123\n\n", "text/event-stream"},
		{"garbage answer", okReq, "secret-token-123", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := exchange(tc.req, tc.resp)
			in.RespContentType = tc.ct
			decodeBad(t, &Spec{Protocol: configs.ProtocolOpenAI}, in)
		})
	}
}
