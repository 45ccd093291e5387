package toy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenAINonStreaming(t *testing.T) {
	long := strings.Repeat("w ", 20)
	tests := []struct {
		name, version, path, body string
		text, finish              string
		prompt                    int
	}{
		{"completions v1", "v1", "/v1/completions", `{"model": "iris", "prompt": "hello there"}`,
			"iris v1 says hello. you said: hello there", "stop", 2},
		{"completions v2", "v2", "/v1/completions", `{"model": "iris-v2", "prompt": "hello there"}`,
			"iris v2 says hello. you said, backwards: there hello and that is all.", "stop", 2},
		{"prompt list", "v1", "/v1/completions", `{"model": "v1", "prompt": ["a b", "c"]}`,
			"iris v1 says hello. you said: a b c", "stop", 3},
		{"max_tokens cuts", "v1", "/v1/completions", `{"prompt": "hello there", "max_tokens": 3}`,
			"iris v1 says", "length", 2},
		{"echo capped at 8 words", "v1", "/v1/completions", `{"prompt": "` + long + `"}`,
			"iris v1 says hello. you said: w w w w w w w w", "stop", 20},
		{"chat v1", "v1", "/v1/chat/completions",
			`{"model": "iris", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}`,
			"iris v1 says hello. you said: be brief hi", "stop", 3},
		{"chat v2 content parts", "v2", "/v1/chat/completions",
			`{"messages": [{"role": "user", "content": [{"type": "text", "text": "one two"}, {"type": "image_url"}]}]}`,
			"iris v2 says hello. you said, backwards: two one and that is all.", "stop", 2},
		{"chat max_completion_tokens", "v2", "/v1/chat/completions",
			`{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 9, "max_completion_tokens": 2}`,
			"iris v2", "length", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := serve(t, Options{Version: tc.version})
			r := post(t, srv, tc.path, tc.body)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			assert.Equal(t, tc.version, r.header.Get(VersionHeader))
			assert.Equal(t, "iris-"+tc.version, r.body["model"])
			choice := r.body["choices"].([]any)[0].(map[string]any)
			assert.Equal(t, tc.finish, choice["finish_reason"])
			if strings.Contains(tc.path, "chat") {
				assert.Equal(t, "chat.completion", r.body["object"])
				assert.Equal(t, map[string]any{"role": "assistant", "content": tc.text}, choice["message"])
			} else {
				assert.Equal(t, "text_completion", r.body["object"])
				assert.Equal(t, tc.text, choice["text"])
			}
			completion := len(strings.Fields(tc.text))
			assert.Equal(t, map[string]any{
				"prompt_tokens": float64(tc.prompt), "completion_tokens": float64(completion),
				"total_tokens": float64(tc.prompt + completion),
			}, r.body["usage"])
		})
	}
}

func TestOpenAIBadInput(t *testing.T) {
	_, srv := serve(t, Options{})
	tests := []struct {
		name, path, body string
		status           int
	}{
		{"unknown model", "/v1/completions", `{"model": "gpt-4", "prompt": "hi"}`, 404},
		{"invalid JSON", "/v1/completions", `{"prompt": `, 400},
		{"prompt not text", "/v1/completions", `{"prompt": 3}`, 400},
		{"prompt missing", "/v1/completions", `{"max_tokens": 3}`, 400},
		{"max_tokens zero", "/v1/completions", `{"prompt": "hi", "max_tokens": 0}`, 400},
		{"no messages", "/v1/chat/completions", `{"messages": []}`, 400},
		{"content not text", "/v1/chat/completions", `{"messages": [{"role": "user", "content": 5}]}`, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, post(t, srv, tc.path, tc.body), tc.status)
		})
	}
}

// sseEvent is one "data:" line of a stream and when it arrived.
type sseEvent struct {
	data string
	at   time.Time
}

// readSSE reads data lines until [DONE] or EOF.
func readSSE(t *testing.T, body io.Reader) []sseEvent {
	t.Helper()
	var events []sseEvent
	br := bufio.NewReader(body)
	for {
		line, err := br.ReadString('\n')
		if data, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "data: "); ok {
			events = append(events, sseEvent{data: data, at: time.Now()})
			if data == "[DONE]" {
				return events
			}
		}
		if err == io.EOF {
			return events
		}
		require.NoError(t, err)
	}
}

func TestOpenAIStreaming(t *testing.T) {
	const interval = 20 * time.Millisecond
	prompt := "tell me about the iris flowers please"
	for _, v := range []string{"v1", "v2"} {
		for _, chat := range []bool{false, true} {
			path, body := "/v1/completions", `{"stream": true, "prompt": "`+prompt+`"}`
			if chat {
				path, body = "/v1/chat/completions", `{"stream": true, "messages": [{"role": "user", "content": "`+prompt+`"}]}`
			}
			t.Run(v+path, func(t *testing.T) {
				_, srv := serve(t, Options{Version: v, StreamInterval: interval})
				want := post(t, srv, path, strings.Replace(body, `"stream": true`, `"stream": false`, 1))
				require.Equal(t, http.StatusOK, want.status, want.raw)

				resp, err := srv.Client().Post(srv.URL+path, "application/json", strings.NewReader(body))
				require.NoError(t, err)
				defer resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
				assert.Equal(t, v, resp.Header.Get(VersionHeader))
				events := readSSE(t, resp.Body)
				require.NotEmpty(t, events)
				done := events[len(events)-1]
				require.Equal(t, "[DONE]", done.data, "stream ends with [DONE]")

				var text strings.Builder
				var content, finishes int
				var gotUsage map[string]any
				for _, e := range events[:len(events)-1] {
					var chunk struct {
						Model   string
						Choices []struct {
							Text         *string
							Delta        struct{ Content *string }
							FinishReason *string `json:"finish_reason"`
						}
						Usage map[string]any
					}
					require.NoError(t, json.Unmarshal([]byte(e.data), &chunk), e.data)
					assert.Equal(t, "iris-"+v, chunk.Model)
					if chunk.Usage != nil {
						gotUsage = chunk.Usage
					}
					for _, c := range chunk.Choices {
						piece := c.Text
						if chat {
							piece = c.Delta.Content
						}
						if piece != nil && *piece != "" {
							content++
							text.WriteString(*piece)
						}
						if c.FinishReason != nil {
							finishes++
							assert.Equal(t, "stop", *c.FinishReason)
						}
					}
				}
				assert.GreaterOrEqual(t, content, 3, "at least 3 content chunks before [DONE]")
				assert.Equal(t, 1, finishes)
				assert.Equal(t, want.body["usage"], gotUsage, "usage chunk matches the non-streaming answer")
				assert.Equal(t, float64(content), gotUsage["completion_tokens"], "one chunk per token")
				wantChoice := want.body["choices"].([]any)[0].(map[string]any)
				if chat {
					assert.Equal(t, wantChoice["message"].(map[string]any)["content"], text.String())
				} else {
					assert.Equal(t, wantChoice["text"], text.String())
				}
				assert.Contains(t, text.String(), "iris "+v+" says hello")
				// Chunks are flushed one by one: the first arrives well before
				// the stream ends (content-1 pauses of interval in between).
				assert.GreaterOrEqual(t, done.at.Sub(events[0].at), time.Duration(content-1)*interval/2)
			})
		}
	}
}

func TestOpenAIStreamStopsWhenClientLeaves(t *testing.T) {
	_, srv := serve(t, Options{StreamInterval: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/completions",
		strings.NewReader(`{"stream": true, "prompt": "hi"}`))
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(line, "data: "), line)
	cancel()
	resp.Body.Close()
	// srv.Close in cleanup waits for the handler: it must not pause an hour.
}

func TestOpenAIModels(t *testing.T) {
	_, srv := serve(t, Options{Version: "v2"})
	r := get(t, srv, "/v1/models")
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "iris-v2", r.body["data"].([]any)[0].(map[string]any)["id"])
}
