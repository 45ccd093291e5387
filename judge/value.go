package judge

import (
	"math"
	"strconv"
	"strings"
)

// Value is one prediction or label value: numeric (Num) or categorical
// (Cat, with IsCat set). Num is finite.
type Value struct {
	Num   float64
	Cat   string
	IsCat bool
}

// Field is a named value, as the decoder names a prediction column
// ("prediction", "prediction[2]", "prediction.setosa").
type Field struct {
	Name  string
	Value Value
}

// MaxCatLen bounds the bytes of a categorical value judge keeps; longer
// ones are cut (labels and class names are short; this bounds memory
// against a hostile answer).
const MaxCatLen = 128

// Num returns a numeric Value.
func Num(f float64) Value { return Value{Num: f} }

// Cat returns a categorical Value, cut to MaxCatLen bytes.
func Cat(s string) Value {
	if len(s) > MaxCatLen {
		s = strings.Clone(s[:MaxCatLen])
	}
	return Value{Cat: s, IsCat: true}
}

// Key is the value's class key: the category itself, or the number in its
// shortest decimal form, so that the label "1" and the prediction 1 are
// the same class.
func (v Value) Key() string {
	if v.IsCat {
		return v.Cat
	}
	return strconv.FormatFloat(v.Num, 'g', -1, 64)
}

// integral reports a numeric value that is a whole number.
func (v Value) integral() bool { return !v.IsCat && v.Num == math.Trunc(v.Num) }

// Numeric reports whether a pair of values is compared as numbers
// (absolute difference, MAE) rather than as classes (agreement,
// accuracy): both are numbers and at least one is not a whole number.
// Categories and whole numbers on both sides (class ids) are classes.
func Numeric(a, b Value) bool {
	return !a.IsCat && !b.IsCat && !(a.integral() && b.integral())
}

// Reduce turns one decoded row's prediction fields into the row's single
// prediction:
//
//   - a field named exactly "prediction" is the prediction (a scalar
//     output, or the top label of a classify result);
//   - else a single field is the prediction;
//   - else, when every field is numeric (scores or probabilities), the
//     argmax: the class named by the winning field's last index or key
//     ("prediction[2]" gives the class "2", "prediction.setosa" gives
//     "setosa"); ties go to the first;
//   - else the first field.
//
// ok is false when fields is empty.
func Reduce(fields []Field) (v Value, ok bool) {
	switch len(fields) {
	case 0:
		return Value{}, false
	case 1:
		return clip(fields[0].Value), true
	}
	for _, f := range fields {
		if f.Name == "prediction" {
			return clip(f.Value), true
		}
	}
	best := -1
	for i, f := range fields {
		if f.Value.IsCat {
			return clip(fields[0].Value), true
		}
		if best < 0 || f.Value.Num > fields[best].Value.Num {
			best = i
		}
	}
	return Cat(className(fields[best].Name)), true
}

func clip(v Value) Value {
	if v.IsCat {
		return Cat(v.Cat)
	}
	return v
}

// className is the class a score column stands for: the last [index] or
// the part after the last dot.
func className(name string) string {
	if strings.HasSuffix(name, "]") {
		if i := strings.LastIndexByte(name, '['); i >= 0 {
			return name[i+1 : len(name)-1]
		}
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}
