package judge

import (
	"math"
	"sort"
)

// AccuracyWindow is the number of labelled rows in one tumbling window of
// an Accuracy.
const AccuracyWindow = 1000

// MaxClasses bounds the classes an Accuracy counts one by one; labels of
// further classes are counted under OtherClass.
const MaxClasses = 64

// OtherClass collects the classes beyond MaxClasses.
const OtherClass = "(other)"

// accCounts are the sums over a set of labelled rows.
type accCounts struct {
	n, correct    int64   // class-like rows, and the correct ones
	reg           int64   // numeric rows
	sumAbs, sumSq float64 // of the numeric rows' errors
	classes       map[string]*ClassCount
}

// ClassCount is one true class: how many rows had it as their label, and
// how many of those the version predicted.
type ClassCount struct {
	Labels  int64 `json:"labels"`
	Correct int64 `json:"correct"`
}

func (c *accCounts) add(pred, label Value, perClass bool) {
	if Numeric(pred, label) {
		d := pred.Num - label.Num
		c.reg++
		c.sumAbs += math.Abs(d)
		c.sumSq += d * d
		return
	}
	c.n++
	ok := pred.Key() == label.Key()
	if ok {
		c.correct++
	}
	if !perClass {
		return
	}
	if c.classes == nil {
		c.classes = map[string]*ClassCount{}
	}
	k := label.Key()
	cc := c.classes[k]
	if cc == nil {
		if len(c.classes) >= MaxClasses {
			k = OtherClass
			cc = c.classes[k]
		}
		if cc == nil {
			cc = new(ClassCount)
			c.classes[k] = cc
		}
	}
	cc.Labels++
	if ok {
		cc.Correct++
	}
}

// AccuracyFigures summarise a set of labelled rows.
type AccuracyFigures struct {
	// Labelled is the number of class-like rows (see Numeric) with a
	// label; Correct those whose prediction matched it. Accuracy is the
	// share, with its 95 % Wilson interval.
	Labelled     int64   `json:"labelled"`
	Correct      int64   `json:"correct"`
	Accuracy     float64 `json:"accuracy"`
	AccuracyLow  float64 `json:"accuracy_low"`
	AccuracyHigh float64 `json:"accuracy_high"`
	// NumericLabelled is the number of numeric rows with a label; MAE
	// and RMSE their mean absolute and root mean squared errors, MAEHalf
	// the half-width of MAE's normal 95 % interval.
	NumericLabelled int64   `json:"numeric_labelled"`
	MAE             float64 `json:"mae"`
	MAEHalf         float64 `json:"mae_half_width"`
	RMSE            float64 `json:"rmse"`
	// Classes counts rows per true class (cumulative figures only).
	Classes map[string]ClassCount `json:"classes,omitempty"`
}

func (c *accCounts) figures() AccuracyFigures {
	f := AccuracyFigures{Labelled: c.n, Correct: c.correct, NumericLabelled: c.reg}
	f.AccuracyLow, f.AccuracyHigh = Wilson(c.correct, c.n)
	if c.n > 0 {
		f.Accuracy = float64(c.correct) / float64(c.n)
	}
	if c.reg > 0 {
		n := float64(c.reg)
		f.MAE = c.sumAbs / n
		f.RMSE = math.Sqrt(c.sumSq / n)
		if c.reg > 1 {
			v := (c.sumSq - n*f.MAE*f.MAE) / (n - 1) // variance of |error|
			f.MAEHalf = z975 * math.Sqrt(math.Max(v, 0)/n)
		}
	}
	if len(c.classes) > 0 {
		f.Classes = make(map[string]ClassCount, len(c.classes))
		keys := make([]string, 0, len(c.classes))
		for k := range c.classes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f.Classes[k] = *c.classes[k]
		}
	}
	return f
}

// Accuracy is one version's online accuracy against ground truth,
// cumulatively and over tumbling windows of AccuracyWindow rows. It is
// not safe for concurrent use: the Store that owns it serialises access.
type Accuracy struct {
	cum, cur, last accCounts
	closed         int64
}

// Add counts one labelled row.
func (a *Accuracy) Add(pred, label Value) {
	a.cum.add(pred, label, true)
	a.cur.add(pred, label, false)
	if a.cur.n+a.cur.reg >= AccuracyWindow {
		a.last, a.cur = a.cur, accCounts{}
		a.closed++
	}
}

// AccuracyReport is an Accuracy's figures since it started and over its
// last closed window (the open one until a window has closed).
type AccuracyReport struct {
	Cumulative    AccuracyFigures `json:"cumulative"`
	Window        AccuracyFigures `json:"window"`
	WindowsClosed int64           `json:"windows_closed"`
}

// Report returns the figures.
func (a *Accuracy) Report() AccuracyReport {
	r := AccuracyReport{Cumulative: a.cum.figures(), WindowsClosed: a.closed}
	if a.closed > 0 {
		r.Window = a.last.figures()
	} else {
		r.Window = a.cur.figures()
	}
	return r
}
