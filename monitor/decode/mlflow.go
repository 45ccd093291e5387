package decode

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"mime"
	"strconv"
	"strings"
)

// MLflow's scoring server (POST /invocations). A JSON request holds exactly
// one of dataframe_split, dataframe_records, instances and inputs, plus an
// optional params (ignored); a text/csv request is decoded by csvRows.
// The answer is {"predictions": [...]}, a bare list (older
// servers), or {"predictions": {"col": [...]}} (a DataFrame by column).

func mlflowRequest(st *state, s *sink, in *Input) error {
	if isCSV(in.ReqContentType) {
		return st.csvRows(s, in.ReqBody)
	}
	body, err := jsonObject(in.ReqBody)
	if err != nil {
		return err
	}
	var split, records, instances, inputs []byte
	it := members(body)
	for k, v, ok := it.next(); ok; k, v, ok = it.next() {
		switch {
		case keyIs(k, "dataframe_split"):
			split = v
		case keyIs(k, "dataframe_records"):
			records = v
		case keyIs(k, "instances"):
			instances = v
		case keyIs(k, "inputs"):
			inputs = v
		}
	}
	if countSet(split, records, instances, inputs) != 1 {
		return malformed("want exactly one of dataframe_split, dataframe_records, instances and inputs")
	}
	switch {
	case split != nil:
		return st.dataframeSplit(s, split)
	case records != nil:
		return st.instances(s, records)
	case instances != nil:
		return st.instances(s, instances)
	case inputs[0] == '{':
		return st.columns(s, inputs, "")
	}
	return st.instances(s, inputs)
}

func mlflowResponse(st *state, s *sink, in *Input) error {
	body := trimWS(in.RespBody)
	if !jsonValid(body) {
		return malformed("invalid JSON")
	}
	switch body[0] {
	case '[':
		return st.instances(s, body)
	case '{':
		preds := lookup(body, "predictions")
		switch {
		case preds == nil:
			return malformed("no predictions")
		case preds[0] == '{':
			return st.columns(s, preds, predictionPrefix)
		}
		return st.instances(s, preds)
	}
	return malformed("neither a list nor an object")
}

// dataframeSplit appends the rows of {"columns": [...], "data": [[...]]}:
// cell j of a row is named columns[j], else by column index; a list cell
// (a tensor column) gives name[k].
func (st *state) dataframeSplit(s *sink, v []byte) error {
	if v[0] != '{' {
		return malformed("dataframe_split is not an object")
	}
	data, cols := lookup(v, "data"), lookup(v, "columns")
	if data == nil || data[0] != '[' {
		return malformed("dataframe_split has no data list")
	}
	var names []string
	if !isNull(cols) {
		if cols[0] != '[' {
			return malformed("dataframe_split columns is not a list")
		}
		it := elems(cols)
		for c, ok := it.next(); ok; c, ok = it.next() {
			name, ok := st.columnName(c)
			if !ok {
				name = st.column(len(names))
			}
			names = append(names, name)
		}
	}
	rows := elems(data)
	for row, ok := rows.next(); ok; row, ok = rows.next() {
		if row[0] != '[' {
			return malformed("dataframe_split data row is not a list")
		}
		cells := elems(row)
		j := 0
		for c, ok := cells.next(); ok; c, ok = cells.next() {
			name := ""
			if j < len(names) {
				name = names[j]
			} else {
				name = st.column(j)
			}
			s.fields = st.appendNamed(s.fields, c, name)
			j++
		}
		s.endRow()
	}
	return nil
}

// columnName is a DataFrame column label: a string, or a number's text.
func (st *state) columnName(v []byte) (string, bool) {
	switch v[0] {
	case '"':
		return st.str(v)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return st.intern(v), true
	}
	return "", false
}

// isCSV reports whether the content type is text/csv.
func isCSV(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	return mt == "text/csv"
}

// csvRows appends the rows of an MLflow text/csv request: the first line
// names the columns (cells past the header are named by column index);
// cells that parse as numbers are numeric, other non-empty cells
// categorical, empty cells and NaN or infinite numbers skipped. Rows may
// differ in length.
func (st *state) csvRows(s *sink, body []byte) error {
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return csvErr(err)
	}
	names := make([]string, len(header))
	for j, h := range header {
		if j == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // a byte-order mark
		}
		if h = strings.TrimSpace(h); h == "" {
			h = st.column(j)
		}
		names[j] = h
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return csvErr(err)
		}
		for j, c := range rec {
			if c = strings.TrimSpace(c); c == "" {
				continue
			}
			name := ""
			if j < len(names) {
				name = names[j]
			} else {
				name = st.column(j)
			}
			f, err := strconv.ParseFloat(c, 64)
			switch {
			case err == nil:
				if v, ok := num(f); ok {
					s.fields = append(s.fields, Field{Name: name, Value: v})
				}
			case !errors.Is(err, strconv.ErrRange): // out of range: infinite
				s.fields = append(s.fields, Field{Name: name, Value: cat(st.internString(c))})
			}
		}
		s.endRow()
	}
}

// csvErr is the error for a CSV parse failure, naming only its line.
func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return malformed("invalid CSV on line " + strconv.Itoa(pe.Line))
	}
	return malformed("invalid CSV")
}

// internString is intern for a string, which it copies when keeping it
// (csv's strings share one allocation per line).
func (st *state) internString(s string) string {
	if len(s) > maxInternLen {
		return s
	}
	for _, t := range st.small[:st.nsmall] {
		if t == s {
			return t
		}
	}
	if t, ok := st.table[s]; ok {
		return t
	}
	return st.intern([]byte(s))
}
