package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/vaneproxy/vane/judge"
	"github.com/vaneproxy/vane/monitor/decode"
)

// Ground truth: the drift monitor's workers hand every decoded sample's
// rows to onPrediction, which keeps the per-row predictions in the
// judge.Store under the request id; POST /feedback joins labels with
// them.

// maxFeedbackBytes bounds the body of one POST /feedback.
const maxFeedbackBytes = 16 << 20

// onPrediction is monitor.Options.OnPrediction.
// Its scratch lives on the stack: it runs for every sampled request.
func (c *comparison) onPrediction(model, version, requestID string, rows []decode.Row) {
	var buf [8]judge.Value
	var fields [8]judge.Field
	vals, _ := appendPredictions(buf[:0], fields[:0], rows)
	if len(vals) > 0 {
		c.store.Put(model, version, requestID, vals)
	}
}

// feedbackItem is one label: {"request_id": "...", "label": ...}, the
// label a string, number or boolean (one row) or a list of them (one per
// row, for batch requests or multi-output models).
type feedbackItem struct {
	RequestID string          `json:"request_id"`
	Label     json.RawMessage `json:"label"`
}

// FeedbackResult is the answer of POST /feedback: how many labels had
// each result.
type FeedbackResult struct {
	Joined  int `json:"joined"`
	Unknown int `json:"unknown"`
	Expired int `json:"expired"`
	Invalid int `json:"invalid"`
}

// serveFeedback is POST /feedback: one label object or a list of them.
// Unknown, expired and invalid items are counted, never an error for the
// batch; only a body that is not JSON of that shape is a 400.
func (s *Server) serveFeedback(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFeedbackBytes+1))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "reading the body: " + err.Error()})
		return
	}
	if len(body) > maxFeedbackBytes {
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("body over %d bytes; send smaller batches", maxFeedbackBytes)})
		return
	}
	var raws []json.RawMessage
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) {
		raws = []json.RawMessage{trimmed}
	} else if err = json.Unmarshal(trimmed, &raws); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: `body must be {"request_id": "...", "label": ...} or a list of them: ` + err.Error()})
		return
	}
	var res FeedbackResult
	joined := map[string]bool{}
	for _, raw := range raws {
		// An item that is not such an object (a number as request_id, a
		// bare value) is invalid on its own; the batch goes on.
		var it feedbackItem
		label, ok := []judge.Value(nil), json.Unmarshal(raw, &it) == nil
		if ok {
			label, ok = parseLabel(it.Label)
		}
		result, model := judge.Invalid, ""
		if ok {
			result, model = s.compare.store.Label(it.RequestID, label)
		}
		switch result {
		case judge.Joined:
			res.Joined++
		case judge.Unknown:
			res.Unknown++
		case judge.Expired:
			res.Expired++
		default:
			res.Invalid++
		}
		s.compare.met.feedback.WithLabelValues(model, result).Inc()
		if result == judge.Joined {
			joined[model] = true
		}
	}
	for model := range joined {
		s.compare.publishAccuracy(model, s.snap.Load())
	}
	writeJSON(w, http.StatusOK, res)
}

// parseLabel reads a label: a scalar, or a list of scalars (one per row).
func parseLabel(raw json.RawMessage) ([]judge.Value, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
			return nil, false
		}
		out := make([]judge.Value, 0, min(len(list), judge.MaxRows))
		for _, e := range list[:min(len(list), judge.MaxRows)] {
			v, ok := parseScalar(e)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	}
	v, ok := parseScalar(raw)
	return []judge.Value{v}, ok
}

func parseScalar(raw json.RawMessage) (judge.Value, bool) {
	var x any
	if json.Unmarshal(raw, &x) != nil {
		return judge.Value{}, false
	}
	switch x := x.(type) {
	case string:
		return judge.Cat(x), true
	case float64:
		return judge.Num(x), true
	case bool:
		return judge.Cat(strings.ToLower(fmt.Sprint(x))), true
	}
	return judge.Value{}, false
}

// publishAccuracy sets the accuracy and MAE gauges of model's versions.
func (c *comparison) publishAccuracy(model string, snap *snapshot) {
	for i := range snap.cfg.Models {
		mc := &snap.cfg.Models[i]
		if mc.Name != model {
			continue
		}
		for _, v := range mc.Versions {
			r, ok := c.store.Accuracy(model, v.Name)
			if !ok {
				continue
			}
			if r.Cumulative.Labelled > 0 {
				c.met.accuracy.WithLabelValues(model, v.Name).Set(r.Cumulative.Accuracy)
			}
			if r.Cumulative.NumericLabelled > 0 {
				c.met.mae.WithLabelValues(model, v.Name).Set(r.Cumulative.MAE)
			}
		}
	}
}
