package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strconv"
)

// OpenAI-compatible completions and chat completions, answered as JSON or
// as a server-sent event stream (see stream). One row per exchange, with
// derived features; see the package documentation for the names.

// oaRequest holds the request fields the features derive from.
type oaRequest struct {
	Model    string          `json:"model"`
	Prompt   json.RawMessage `json:"prompt"`
	Messages []struct {
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

// oaResult accumulates what the answer tells.
type oaResult struct {
	chars                  int     // completion characters, all choices
	finish                 []byte  // finish_reason of choice 0, quoted
	promptTok, complTok    float64 // from usage
	hasPromptTok, hasCompl bool
}

func openAIRow(st *state, in *Input) (Row, error) {
	fs := make([]Field, 0, 8)
	if len(in.ReqBody) > 0 {
		var req oaRequest
		if err := json.Unmarshal(in.ReqBody, &req); err != nil {
			return Row{}, sideErr("request", jsonErr(err))
		}
		if req.Model != "" {
			fs = append(fs, Field{Name: "model", Value: cat(req.Model)})
		}
		if n, ok := promptChars(&req); ok {
			fs = append(fs, Field{Name: "prompt_chars", Value: Value{Num: float64(n)}})
		}
	}
	var res oaResult
	answered := in.Status >= 200 && in.Status <= 299 && len(in.RespBody) > 0
	if answered {
		var err error
		if isEventStream(in.RespContentType, in.RespBody) {
			err = res.stream(in.RespBody)
		} else {
			err = res.add(in.RespBody)
		}
		if err != nil {
			return Row{}, sideErr("response", err)
		}
		if res.hasPromptTok {
			fs = append(fs, Field{Name: "prompt_tokens", Value: Value{Num: res.promptTok}})
		}
		if res.hasCompl {
			fs = append(fs, Field{Name: "completion_tokens", Value: Value{Num: res.complTok}})
		}
		if f, ok := st.str(res.finish); ok && f != "" {
			fs = append(fs, Field{Name: "finish_reason", Value: cat(f)})
		}
	}
	if in.TTFB > 0 {
		fs = append(fs, Field{Name: "ttfb_seconds", Value: Value{Num: in.TTFB.Seconds()}})
	}
	if in.Latency > 0 {
		fs = append(fs, Field{Name: "latency_seconds", Value: Value{Num: in.Latency.Seconds()}})
	}
	row := Row{Features: fs}
	if len(fs) == 0 {
		row.Features = nil
	}
	if answered {
		row.Predictions = []Field{{Name: "completion_chars", Value: Value{Num: float64(res.chars)}}}
	}
	return row, nil
}

// add takes in one answer or stream chunk, walking it in place: a stream
// has a chunk per token, and decoding each into structs would cost a
// dozen allocations.
func (r *oaResult) add(chunk []byte) error {
	chunk = trimWS(chunk)
	if !jsonValid(chunk) {
		return malformed("invalid JSON")
	}
	if chunk[0] != '{' {
		return malformed("not a JSON object")
	}
	var choices, usage []byte
	it := members(chunk)
	for k, v, ok := it.next(); ok; k, v, ok = it.next() {
		switch {
		case keyIs(k, "choices"):
			choices = v
		case keyIs(k, "usage"):
			usage = v
		}
	}
	if len(choices) > 0 && choices[0] == '[' {
		it := elems(choices)
		for c, ok := it.next(); ok; c, ok = it.next() {
			if err := r.choice(c); err != nil {
				return err
			}
		}
	}
	if len(usage) > 0 && usage[0] == '{' {
		if f, ok := number(lookup(usage, "prompt_tokens")); ok {
			r.promptTok, r.hasPromptTok = f, true
		}
		if f, ok := number(lookup(usage, "completion_tokens")); ok {
			r.complTok, r.hasCompl = f, true
		}
	}
	return nil
}

// choice takes in one element of choices: its text (completions),
// message.content (chat) or delta.content (chat chunks), and the
// finish_reason of choice 0.
func (r *oaResult) choice(c []byte) error {
	if c[0] != '{' {
		return malformed("choice is not an object")
	}
	var index, finish []byte
	it := members(c)
	for k, v, ok := it.next(); ok; k, v, ok = it.next() {
		var content []byte
		switch {
		case keyIs(k, "text"):
			content = v
		case keyIs(k, "message"), keyIs(k, "delta"):
			content = lookup(v, "content")
		case keyIs(k, "index"):
			index = v
		case keyIs(k, "finish_reason"):
			finish = v
		}
		n, ok := contentChars(content)
		if !ok {
			return malformed("choice content is not text")
		}
		r.chars += n
	}
	if (index == nil || string(index) == "0") && len(finish) > 0 && finish[0] == '"' {
		r.finish = finish
	}
	return nil
}

// promptChars is the length in characters of the prompt (a string or a
// list of strings) or of the messages' contents. ok is false when there
// is no text: no prompt, or a prompt of token ids.
func promptChars(req *oaRequest) (int, bool) {
	if len(req.Messages) > 0 {
		total := 0
		for _, m := range req.Messages {
			n, _ := contentChars(m.Content)
			total += n
		}
		return total, true
	}
	p := req.Prompt
	switch {
	case len(p) == 0:
		return 0, false
	case p[0] == '"':
		return runes(p)
	case p[0] != '[':
		return 0, false
	}
	total, text := 0, false
	it := elems(p)
	for e, ok := it.next(); ok; e, ok = it.next() {
		if n, ok := runes(e); ok {
			total, text = total+n, true
		}
	}
	return total, text
}

// contentChars counts the characters of a content: a string, a list of
// parts whose text parts count, or null. ok is false for anything else.
func contentChars(v []byte) (int, bool) {
	switch {
	case isNull(v):
		return 0, true
	case v[0] == '"':
		return runes(v)
	case v[0] != '[':
		return 0, false
	}
	total := 0
	it := elems(v)
	for part, ok := it.next(); ok; part, ok = it.next() {
		if part[0] == '"' { // a list of strings
			n, _ := runes(part)
			total += n
			continue
		}
		if n, ok := runes(lookup(part, "text")); ok { // images have no text
			total += n
		}
	}
	return total, true
}

// isEventStream reports whether the answer is an SSE stream: by its
// content type, else by not starting like a JSON object.
func isEventStream(contentType string, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt == "text/event-stream" {
		return true
	}
	b := trimWS(body)
	return len(b) > 0 && b[0] != '{'
}

// sideErr prefixes err with the side of the exchange it concerns.
func sideErr(side string, err error) error {
	return fmt.Errorf("%s: %w", side, err)
}

// jsonErr is the error for a failed json.Unmarshal, without its text,
// which may quote the payload.
func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return malformed("not a JSON object")
		}
		return malformed("wrong JSON type for " + te.Field)
	}
	return malformed("invalid JSON")
}

// Server-sent events of a streamed OpenAI answer:
//
//	data: {"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}
//
//	data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}
//
//	data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}
//
//	data: [DONE]
//
// Lines end with LF or CRLF; an event is its data lines (joined by LF) up
// to a blank line; comments and other fields are ignored. Completions
// chunks carry choices[i].text, chat chunks choices[i].delta.content; their
// lengths add up to the completion's. An event cut off by the end of the
// body (a truncated stream) counts only if its data is valid JSON.

// stream takes in each chunk of the SSE answer body.
func (r *oaResult) stream(body []byte) error {
	var (
		data   []byte // the current event's data
		joined []byte // holds data once a second data line came
		has    bool   // the current event has data
		multi  bool   // data is joined
		events int
	)
	for len(body) > 0 {
		line, rest, _ := bytes.Cut(body, []byte{'\n'})
		body = rest
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			if has {
				if err := r.event(data, events, false); err != nil {
					return err
				}
				events++
			}
			data, has = nil, false
			continue
		}
		if line[0] == ':' {
			continue // a comment
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		if string(field) != "data" {
			continue // event, id, retry, unknown fields
		}
		value = bytes.TrimPrefix(value, []byte{' '})
		switch {
		case !has:
			data, has, multi = value, true, false
			continue
		case !multi:
			joined, multi = append(joined[:0], data...), true
		}
		joined = append(append(joined, '\n'), value...)
		data = joined
	}
	if has {
		if err := r.event(data, events, true); err == nil {
			events++
		}
	}
	if events == 0 {
		return malformed("stream has no events")
	}
	return nil
}

// event takes in one event's data: a JSON chunk, or [DONE]. A truncated
// last event fails quietly.
func (r *oaResult) event(data []byte, index int, last bool) error {
	data = trimWS(data)
	if string(data) == "[DONE]" {
		return nil
	}
	err := r.add(data)
	if err != nil && !last {
		return sideErr("stream event "+strconv.Itoa(index), err)
	}
	return err
}
