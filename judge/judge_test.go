package judge

import (
	"fmt"
	"hash/maphash"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReduce(t *testing.T) {
	cases := []struct {
		name   string
		fields []Field
		want   Value
	}{
		{"scalar", []Field{{"prediction", Num(2)}}, Num(2)},
		{"probabilities argmax", []Field{{"prediction[0]", Num(.1)}, {"prediction[1]", Num(.7)}, {"prediction[2]", Num(.2)}}, Cat("1")},
		{"classify top label wins", []Field{{"prediction", Cat("setosa")}, {"prediction.setosa", Num(.9)}, {"prediction.virginica", Num(.1)}}, Cat("setosa")},
		{"named scores", []Field{{"prediction.cat", Num(.2)}, {"prediction.dog", Num(.8)}}, Cat("dog")},
		{"mixed takes the first", []Field{{"a", Cat("x")}, {"b", Num(1)}}, Cat("x")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := Reduce(c.fields)
			require.True(t, ok)
			assert.Equal(t, c.want, got)
		})
	}
	_, ok := Reduce(nil)
	assert.False(t, ok)
	long, _ := Reduce([]Field{{"prediction", Cat(string(make([]byte, 1000)))}})
	assert.Len(t, long.Cat, MaxCatLen)
}

func TestNumericOrClass(t *testing.T) {
	assert.False(t, Numeric(Num(1), Num(2)), "whole numbers are class ids")
	assert.True(t, Numeric(Num(1.5), Num(2)))
	assert.False(t, Numeric(Cat("1"), Num(1.5)))
	assert.Equal(t, Cat("1").Key(), Num(1).Key(), "the label \"1\" is the class 1")
}

// TestShadowTenPercent: a shadow that disagrees on exactly every tenth of
// 5,000 answers has agreement 0.9, inside its Wilson interval.
func TestShadowTenPercent(t *testing.T) {
	var s Shadow
	for i := range 5000 {
		label := float64(i % 3)
		shadow := label
		if i%10 == 9 {
			shadow = label + 1
		}
		out := s.Add(Pair{PrimaryStatus: 200, ShadowStatus: 200,
			PrimaryLatency: 10 * time.Millisecond, ShadowLatency: 20 * time.Millisecond,
			Primary: []Value{Num(label)}, Shadow: []Value{Num(shadow)}})
		require.Equal(t, 1, out.Rows)
	}
	r := s.Report()
	c := r.Cumulative
	assert.Equal(t, int64(5000), c.Pairs)
	assert.Equal(t, int64(5000), c.Rows)
	assert.InDelta(t, 0.9, c.Agreement, 1e-12)
	assert.True(t, c.AgreementLow < 0.9 && 0.9 < c.AgreementHigh, "%v..%v", c.AgreementLow, c.AgreementHigh)
	assert.Less(t, c.AgreementHigh-c.AgreementLow, 0.02, "5,000 pairs pin it down")
	assert.InDelta(t, 2.0, c.LatencyRatio, 1e-9)
	assert.Equal(t, int64(5), r.WindowsClosed)
	assert.Equal(t, int64(ShadowWindow), r.Window.Pairs)
	assert.InDelta(t, 0.9, r.Window.Agreement, 1e-12)
}

func TestShadowNumericAndErrors(t *testing.T) {
	var s Shadow
	for i := range 100 {
		p := Pair{PrimaryStatus: 200, ShadowStatus: 200,
			Primary: []Value{Num(1.5), Num(10.5)}, Shadow: []Value{Num(1.5 + float64(i%2)*0.5), Num(10.5)}}
		if i < 10 {
			p.ShadowStatus, p.Shadow = 503, nil
		}
		s.Add(p)
	}
	c := s.Report().Cumulative
	assert.Equal(t, int64(0), c.Rows)
	assert.Equal(t, int64(180), c.NumericRows)
	assert.InDelta(t, 45*0.5/180, c.MeanAbsDiff, 1e-12)
	assert.InDelta(t, 0.5, c.P95AbsDiff, 0.5*0.19)
	assert.InDelta(t, 0.1, c.ShadowErrorRate, 1e-12)
	assert.Equal(t, 0.0, c.PrimaryErrorRate)
}

// TestFeedbackExactAccuracy: 10,000 predictions, labels for all of them
// within the TTL, give exactly the accuracy computed offline; labels for
// unknown and late ids are counted as such.
func TestFeedbackExactAccuracy(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	s := NewStore(20_000, time.Hour, clock)
	const n = 10_000
	correct := map[string]int{}
	for i := range n {
		id := "req-" + strconv.Itoa(i)
		pred := (i * 7) % 3
		label := (i * 7 / 5) % 3 // agrees with pred on some ids only
		require.True(t, s.Put("iris", "v1", id, []Value{Num(float64(pred))}))
		// A shadow prediction of the same request, off by one on odd ids.
		sh := pred
		if i%2 == 1 {
			sh = (pred + 1) % 3
		}
		require.True(t, s.Put("iris", "v2", id, []Value{Num(float64(sh))}))
		if pred == label {
			correct["v1"]++
		}
		if sh == label {
			correct["v2"]++
		}
	}
	now = now.Add(30 * time.Minute)
	for i := range n {
		label := (i * 7 / 5) % 3
		res, model := s.Label("req-"+strconv.Itoa(i), []Value{Cat(strconv.Itoa(label))})
		require.Equal(t, Joined, res)
		require.Equal(t, "iris", model)
	}
	for _, v := range []string{"v1", "v2"} {
		r, ok := s.Accuracy("iris", v)
		require.True(t, ok)
		assert.Equal(t, int64(n), r.Cumulative.Labelled, v)
		assert.Equal(t, int64(correct[v]), r.Cumulative.Correct, v)
		assert.Equal(t, float64(correct[v])/n, r.Cumulative.Accuracy, v)
		var perClass int64
		for _, c := range r.Cumulative.Classes {
			perClass += c.Labels
		}
		assert.Equal(t, int64(n), perClass)
	}
	// A second label for a joined id, an id never seen: unknown.
	res, _ := s.Label("req-1", []Value{Num(1)})
	assert.Equal(t, Unknown, res)
	res, _ = s.Label("nope", []Value{Num(1)})
	assert.Equal(t, Unknown, res)
	res, _ = s.Label("", []Value{Num(1)})
	assert.Equal(t, Invalid, res)
	// Late: past the TTL.
	s.Put("iris", "v1", "late", []Value{Num(1)})
	now = now.Add(time.Hour + time.Second)
	res, model := s.Label("late", []Value{Num(1)})
	assert.Equal(t, Expired, res)
	assert.Equal(t, "iris", model)
	r, _ := s.Accuracy("iris", "v1")
	assert.Equal(t, int64(n), r.Cumulative.Labelled, "late labels are not scored")
}

func TestFeedbackRegression(t *testing.T) {
	s := NewStore(10, time.Hour, time.Now)
	s.Put("m", "v1", "a", []Value{Num(1.5), Num(2.5)})
	res, _ := s.Label("a", []Value{Num(2), Num(2.5)})
	require.Equal(t, Joined, res)
	r, _ := s.Accuracy("m", "v1")
	assert.Equal(t, int64(2), r.Cumulative.NumericLabelled)
	assert.InDelta(t, 0.25, r.Cumulative.MAE, 1e-12)
	assert.InDelta(t, math.Sqrt(0.125), r.Cumulative.RMSE, 1e-12)
}

// TestFeedbackStoreBounded floods the store with predictions of distinct
// ids, from several goroutines: it never holds more than its size, and
// the newest ids are the ones still joinable.
func TestFeedbackStoreBounded(t *testing.T) {
	s := NewStore(1000, time.Hour, time.Now)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20_000 {
				s.Put("m", "v1", fmt.Sprintf("g%d-%d", g, i), []Value{Num(1)})
				if i%100 == 0 {
					s.Label(fmt.Sprintf("g%d-%d", g, i/2), []Value{Num(1)})
				}
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, s.Len(), 1000)
	assert.Equal(t, 1000, s.size)
	assert.LessOrEqual(t, len(s.ids), 1000)
	assert.LessOrEqual(t, s.Values(), ValuesPerEntry*1000)
	// Batch predictions of many rows from every version: the value budget
	// forgets old ids rather than grow.
	many := make([]Value, MaxRows)
	for i := range 5000 {
		for v := range MaxVersionsPerID {
			s.Put("m", "v"+strconv.Itoa(v), "batch-"+strconv.Itoa(i), many)
		}
	}
	assert.LessOrEqual(t, s.Values(), ValuesPerEntry*1000)
	assert.Greater(t, s.Len(), 0)
	total := 0
	for _, k := range s.ids {
		total += int(s.slot(int(k)).n)
	}
	assert.Equal(t, total, s.Values(), "the count matches the entries")
	// Many rows and versions per id are bounded too.
	big := make([]Value, 10*MaxRows)
	s2 := NewStore(1000, time.Hour, time.Now)
	for v := range 10 {
		s2.Put("m", "v"+strconv.Itoa(v), "big", big)
	}
	k := s2.find("big", maphash.String(s2.seed, "big"))
	require.GreaterOrEqual(t, k, 0)
	preds := s2.bigPreds[int32(k)]
	assert.Len(t, preds, MaxVersionsPerID)
	assert.Len(t, preds[0].values, MaxRows)
	assert.False(t, s.Put("m", "v1", string(make([]byte, MaxIDLen+1)), []Value{Num(1)}))
}

func TestRecorder(t *testing.T) {
	var r Recorder
	for i := range 2000 {
		code := 200
		if i%50 == 0 {
			code = 503
		}
		r.Record(code, time.Duration(i%100+1)*time.Millisecond)
	}
	f := r.Figures()
	assert.Equal(t, int64(2000), f.Requests)
	assert.Equal(t, int64(40), f.Errors)
	assert.Equal(t, int64(RecorderWindow), f.WindowRequests)
	assert.InDelta(t, 0.050, f.P50, 0.002)
	assert.InDelta(t, 0.099, f.P99, 0.002)
	var sum int64
	for _, c := range f.Latency {
		sum += c
	}
	assert.Equal(t, int64(2000), sum)
	var nilRec *Recorder
	nilRec.Record(200, time.Millisecond) // a nil recorder records nothing
}

// BenchmarkRecord is what every answered request pays for /compare.
func BenchmarkRecord(b *testing.B) {
	var r Recorder
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := 3 * time.Millisecond
		for pb.Next() {
			r.Record(200, d)
		}
	})
}

// BenchmarkStorePut is what every sampled request pays for feedback: one
// prediction of one row under a new request id, in a full store (each Put
// forgets the oldest id). It allocates nothing.
func BenchmarkStorePut(b *testing.B) {
	const entries = 1 << 14
	s := NewStore(entries, time.Hour, time.Now)
	ids := make([]string, 2*entries)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i)
	}
	vals := []Value{Num(1)}
	for _, id := range ids[:entries] {
		s.Put("iris", "v1", id, vals)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Put("iris", "v1", ids[i%len(ids)], vals)
	}
}

// TestStorePutAllocations pins BenchmarkStorePut's count: a sampled
// request's prediction (one row, an id of vane's length) allocates nothing
// once the store's chunk is there.
func TestStorePutAllocations(t *testing.T) {
	s := NewStore(64, time.Hour, time.Now)
	ids := make([]string, 256)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i)
	}
	vals := []Value{Num(1)}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		s.Put("iris", "v1", ids[i%len(ids)], vals)
		i++
	})
	assert.Zero(t, allocs)
}

// TestStoreIDs: ids longer than an entry holds inline, the same id on
// another model, and two ids whose hashes collide each keep one entry
// per id, the newer winning.
func TestStoreIDs(t *testing.T) {
	s := NewStore(8, time.Hour, time.Now)
	long := strings.Repeat("x", MaxIDLen)
	require.True(t, s.Put("m", "v1", long, []Value{Num(1)}))
	require.True(t, s.Put("m", "v2", long, []Value{Num(2)}))
	assert.Equal(t, 1, s.Len())
	res, model := s.Label(long[:MaxIDLen-1], []Value{Num(1)})
	assert.Equal(t, Unknown, res, "a prefix of a long id is another id")
	res, model = s.Label(long, []Value{Num(1)})
	assert.Equal(t, Joined, res)
	assert.Equal(t, "m", model)

	require.True(t, s.Put("m", "v1", "a", []Value{Num(1)}))
	require.True(t, s.Put("other", "v1", "a", []Value{Num(1)}))
	assert.Equal(t, 1, s.Len())
	_, model = s.Label("a", []Value{Num(1)})
	assert.Equal(t, "other", model, "the same id on another model: the newer wins")

	// "b" collides with "c": the map sends c's hash to b's slot.
	require.True(t, s.Put("m", "v1", "b", []Value{Num(1)}))
	s.ids[maphash.String(s.seed, "c")] = s.ids[maphash.String(s.seed, "b")]
	res, _ = s.Label("c", []Value{Num(1)})
	assert.Equal(t, Unknown, res, "a colliding id is not joined with another's prediction")
	require.True(t, s.Put("m", "v1", "c", []Value{Num(3)}))
	res, _ = s.Label("b", []Value{Num(1)})
	assert.Equal(t, Unknown, res, "the newer of two colliding ids wins")
	res, _ = s.Label("c", []Value{Num(3)})
	assert.Equal(t, Joined, res)
	assert.Zero(t, s.Len())
	assert.Zero(t, s.Values())
}

// TestStoreMixedPredictions: predictions of one row are held inline,
// categories included; an id that also gets a prediction of several rows
// moves to the side table with all of them; every one is scored, and the
// value count follows.
func TestStoreMixedPredictions(t *testing.T) {
	s := NewStore(8, time.Hour, time.Now)
	require.True(t, s.Put("m", "v1", "x", []Value{Cat("setosa")}))
	require.True(t, s.Put("m", "v2", "x", []Value{Num(2), Num(0)}))
	assert.Equal(t, 3, s.Values())
	require.True(t, s.Put("m", "v1", "x", []Value{Cat("virginica")}), "replaces v1's")
	assert.Equal(t, 3, s.Values())
	res, _ := s.Label("x", []Value{Cat("virginica"), Num(1)})
	require.Equal(t, Joined, res)
	v1, ok := s.Accuracy("m", "v1")
	require.True(t, ok)
	assert.Equal(t, int64(1), v1.Cumulative.Labelled)
	assert.Equal(t, int64(1), v1.Cumulative.Correct)
	v2, ok := s.Accuracy("m", "v2")
	require.True(t, ok)
	assert.Equal(t, int64(2), v2.Cumulative.Labelled)
	assert.Zero(t, s.Values())
	assert.Empty(t, s.bigPreds)

	// Past half the name table, new categories are kept on the side.
	for i := len(s.names); i < maxNames/2; i++ {
		s.intern(strconv.Itoa(i), maxNames)
	}
	require.True(t, s.Put("m", "v1", "y", []Value{Cat("new class")}))
	res, _ = s.Label("y", []Value{Cat("new class")})
	require.Equal(t, Joined, res)
	v1, _ = s.Accuracy("m", "v1")
	assert.Equal(t, int64(2), v1.Cumulative.Correct)
}

// TestStoreEntryHasNoPointers: entries hold no pointers, so the chunks of
// a full store (100,000 entries by default) are never scanned by the GC.
func TestStoreEntryHasNoPointers(t *testing.T) {
	var check func(reflect.Type)
	check = func(typ reflect.Type) {
		switch typ.Kind() {
		case reflect.Struct:
			for i := range typ.NumField() {
				check(typ.Field(i).Type)
			}
		case reflect.Array:
			check(typ.Elem())
		case reflect.Bool, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int,
			reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint, reflect.Float64:
		default:
			t.Errorf("entry holds a %s", typ)
		}
	}
	check(reflect.TypeFor[entry]())
}
