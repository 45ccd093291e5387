package toy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// openAIRequest holds the fields of completions and chat completions
// requests that the toy reads; the rest are ignored.
type openAIRequest struct {
	Model               string          `json:"model"`
	Prompt              json.RawMessage `json:"prompt"`
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stream              bool            `json:"stream"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// modelID is the OpenAI model id, e.g. "iris-v1".
func (m *Model) modelID() string { return m.opts.Name + "-" + m.opts.Version }

// serveOpenAIModels answers GET /v1/models with the one model served.
func (m *Model) serveOpenAIModels(w http.ResponseWriter, r *http.Request) {
	if m.method(w, r, http.MethodGet) {
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []map[string]any{
			{"id": m.modelID(), "object": "model", "owned_by": "vane-toymodel"},
		}})
	}
}

// serveOpenAI answers /v1/completions (chat false) and /v1/chat/completions.
// The body's "model" may be empty, the name, the version, or name-version.
// The reply is deterministic: it names the model and version and echoes
// prompt words (v1 in order, other versions reversed and longer), cut at
// max_tokens with finish_reason "length", else "stop". A token is a
// whitespace-separated word.
func (m *Model) serveOpenAI(w http.ResponseWriter, r *http.Request, chat bool) {
	if !m.method(w, r, http.MethodPost) {
		return
	}
	body, ok := m.begin(w, r)
	if !ok {
		return
	}
	var req openAIRequest
	if !decodeJSON(w, body, &req) {
		return
	}
	if req.Model != "" && !slices.Contains([]string{m.opts.Name, m.opts.Version, m.modelID()}, req.Model) {
		writeError(w, http.StatusNotFound, "model %q not found; serving %q", req.Model, m.modelID())
		return
	}
	prompt, err := req.promptText(chat)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	limit := req.MaxTokens
	if chat && req.MaxCompletionTokens != nil {
		limit = req.MaxCompletionTokens
	}
	if limit != nil && *limit < 1 {
		writeError(w, http.StatusBadRequest, "max_tokens must be at least 1, got %d", *limit)
		return
	}
	words, finish := m.reply(strings.Fields(prompt), limit)
	u := usage{PromptTokens: len(strings.Fields(prompt)), CompletionTokens: len(words)}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	id := fmt.Sprintf("cmpl-toy-%d", m.seq.Add(1))
	if chat {
		id = "chat" + id
	}
	if req.Stream {
		m.stream(w, r, chat, id, words, finish, u)
		return
	}
	text := strings.Join(words, " ")
	out := map[string]any{"id": id, "created": time.Now().Unix(), "model": m.modelID(), "usage": u}
	if chat {
		out["object"] = "chat.completion"
		out["choices"] = []map[string]any{{
			"index": 0, "finish_reason": finish,
			"message": map[string]any{"role": "assistant", "content": text},
		}}
	} else {
		out["object"] = "text_completion"
		out["choices"] = []map[string]any{{"index": 0, "text": text, "logprobs": nil, "finish_reason": finish}}
	}
	writeJSON(w, http.StatusOK, out)
}

// promptText is the completions prompt (a string or a list of strings) or
// the chat messages' contents (strings or lists of text parts), joined.
func (req *openAIRequest) promptText(chat bool) (string, error) {
	if !chat {
		var s string
		if json.Unmarshal(req.Prompt, &s) == nil {
			return s, nil
		}
		var list []string
		if json.Unmarshal(req.Prompt, &list) == nil {
			return strings.Join(list, " "), nil
		}
		return "", fmt.Errorf(`"prompt" must be a string or a list of strings`)
	}
	if len(req.Messages) == 0 {
		return "", fmt.Errorf(`"messages" must be a non-empty list`)
	}
	var parts []string
	for i, msg := range req.Messages {
		var s string
		if json.Unmarshal(msg.Content, &s) == nil {
			parts = append(parts, s)
			continue
		}
		var pieces []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if json.Unmarshal(msg.Content, &pieces) != nil {
			return "", fmt.Errorf("message %d: content must be a string or a list of parts", i)
		}
		for _, p := range pieces {
			if p.Type == "text" {
				parts = append(parts, p.Text)
			}
		}
	}
	return strings.Join(parts, " "), nil
}

// reply builds the answer words and finish reason for the prompt words.
func (m *Model) reply(prompt []string, limit *int) ([]string, string) {
	const echo = 8
	words := []string{m.opts.Name, m.opts.Version, "says", "hello."}
	said := prompt[:min(len(prompt), echo)]
	if m.opts.Version == "v1" {
		words = append(words, "you said:")
		words = append(words, said...)
	} else {
		words = append(words, "you said, backwards:")
		for _, w := range slices.Backward(said) {
			words = append(words, w)
		}
		words = append(words, "and", "that", "is", "all.")
	}
	words = strings.Fields(strings.Join(words, " "))
	if limit != nil && *limit < len(words) {
		return words[:*limit], "length"
	}
	return words, "stop"
}

// stream answers as server-sent events: one chunk per word, flushed and
// paced by StreamInterval, then a chunk with finish_reason, a usage chunk and
// "data: [DONE]". Completions chunks carry choices[0].text, chat chunks
// choices[0].delta.content.
func (m *Model) stream(w http.ResponseWriter, r *http.Request, chat bool, id string, words []string, finish string, u usage) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	object := "text_completion"
	if chat {
		object = "chat.completion.chunk"
	}
	created := time.Now().Unix()
	send := func(choices []map[string]any, u *usage) bool {
		chunk := map[string]any{"id": id, "object": object, "created": created, "model": m.modelID(), "choices": choices}
		if u != nil {
			chunk["usage"] = u
		}
		b, _ := json.Marshal(chunk)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for i, word := range words {
		if i > 0 && !m.pause(r) {
			return
		}
		if i < len(words)-1 {
			word += " "
		}
		choice := map[string]any{"index": 0, "finish_reason": nil}
		if chat {
			delta := map[string]any{"content": word}
			if i == 0 {
				delta["role"] = "assistant"
			}
			choice["delta"] = delta
		} else {
			choice["text"] = word
		}
		if !send([]map[string]any{choice}, nil) {
			return
		}
	}
	last := map[string]any{"index": 0, "finish_reason": finish}
	if chat {
		last["delta"] = map[string]any{}
	} else {
		last["text"] = ""
	}
	if !send([]map[string]any{last}, nil) || !send([]map[string]any{}, &u) {
		return
	}
	_, _ = fmt.Fprint(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}

// pause waits StreamInterval; it reports false when the client went away.
func (m *Model) pause(r *http.Request) bool {
	if m.opts.StreamInterval <= 0 {
		return r.Context().Err() == nil
	}
	t := time.NewTimer(m.opts.StreamInterval)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
