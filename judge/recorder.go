package judge

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// Latency buckets: geometric, eight per doubling (each about 9 % wide),
// from 10 µs to about 100 s; the first bucket holds everything below
// 10 µs and the last everything above.
const (
	latencyBase      = 10e-6 // seconds
	latencyPerOctave = 8
	// LatencyBuckets is the number of latency buckets.
	LatencyBuckets = 24*latencyPerOctave + 2
)

// LatencyBucket returns the bucket of d: 1 + ⌊8·log₂(d/10 µs)⌋, from
// the binary exponent of d/10 µs and its mantissa's place among the
// eighth-octave bounds, without a logarithm (it runs for every answer).
func LatencyBucket(d time.Duration) int {
	x := float64(d) / (latencyBase * 1e9) // exact for whole octaves
	if !(x >= 1) {
		return 0
	}
	frac, exp := math.Frexp(x) // frac in [0.5, 1)
	i := 1 + latencyPerOctave*(exp-1)
	if i >= LatencyBuckets-1 {
		return LatencyBuckets - 1
	}
	for _, b := range &octaveSteps {
		if frac < b {
			break
		}
		i++
	}
	return min(i, LatencyBuckets-1)
}

// octaveSteps are the bucket bounds within an octave, 2^(k/8)/2 for
// k = 1..7, on the scale of math.Frexp's fraction.
var octaveSteps = func() (b [latencyPerOctave - 1]float64) {
	for k := range b {
		b[k] = math.Exp2(float64(k+1)/latencyPerOctave) / 2
	}
	return b
}()

// bucketMid is a representative latency (seconds) of bucket i: its
// geometric middle.
func bucketMid(i int) float64 {
	if i == 0 {
		return latencyBase / 2
	}
	return latencyBase * math.Exp2((float64(i-1)+0.5)/latencyPerOctave)
}

// histQuantile returns the q-quantile (seconds) of a latency histogram,
// to within a bucket; 0 when it is empty.
func histQuantile(h []int64, q float64) float64 {
	var n int64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i, c := range h {
		seen += c
		if seen >= max(rank, 1) {
			return bucketMid(i)
		}
	}
	return bucketMid(len(h) - 1)
}

// RecorderWindow is the number of latest answers a Recorder keeps for its
// window figures (p50, p99, error rate).
const RecorderWindow = 1024

// IsError reports whether an answer's status counts as an error of the
// version: 5xx (vane's own 502, 503 and 504 included) or no status at
// all. 4xx answers are the client's doing and are not errors.
func IsError(code int) bool { return code >= 500 || code <= 0 }

// Recorder counts one version's answered requests: since it was created
// (cumulatively) and over the last RecorderWindow answers. Record is safe
// for concurrent use, takes no lock and does not allocate; it is meant for
// the request path.
type Recorder struct {
	requests atomic.Int64
	errors   atomic.Int64
	hist     [LatencyBuckets]atomic.Int64
	next     atomic.Uint64
	// ring holds the latest answers: latency in ns << 1 | error bit;
	// 0 is an empty slot.
	ring [RecorderWindow]atomic.Int64
}

// Record counts one answer with its status code and latency.
func (r *Recorder) Record(code int, d time.Duration) {
	if r == nil {
		return
	}
	r.requests.Add(1)
	e := int64(0)
	if IsError(code) {
		r.errors.Add(1)
		e = 1
	}
	r.hist[LatencyBucket(d)].Add(1)
	i := r.next.Add(1) - 1
	r.ring[i%RecorderWindow].Store(max(int64(d), 0)<<1 | e | 1<<62)
}

// Totals are a Recorder's cumulative counts.
type Totals struct {
	Requests, Errors int64
	// Latency counts answers per latency bucket (see LatencyBucket).
	Latency [LatencyBuckets]int64
}

// Totals returns the cumulative counts: cheaper than Figures, which also
// sorts the window. Concurrent Records may be half in it.
func (r *Recorder) Totals() Totals {
	t := Totals{Requests: r.requests.Load(), Errors: r.errors.Load()}
	for i := range r.hist {
		t.Latency[i] = r.hist[i].Load()
	}
	return t
}

// BucketUpper is the exclusive upper bound of latency bucket i: every
// duration in it is shorter. The last bucket's is the longest Duration.
func BucketUpper(i int) time.Duration {
	if i >= LatencyBuckets-1 {
		return math.MaxInt64
	}
	return time.Duration(math.Ceil(latencyBase * 1e9 * math.Exp2(float64(i)/latencyPerOctave)))
}

// Figures is a copy of a Recorder's counts.
type Figures struct {
	// Requests and Errors count answers since the recorder was created.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Latency counts answers per latency bucket (see LatencyBucket).
	Latency []int64 `json:"-"`
	// Window figures cover the last RecorderWindow answers (fewer at
	// first): their count, error count and latency quantiles in seconds.
	WindowRequests int64   `json:"window_requests"`
	WindowErrors   int64   `json:"window_errors"`
	P50            float64 `json:"p50_seconds"`
	P99            float64 `json:"p99_seconds"`
}

// Figures returns a copy of the counts. Concurrent Records may be half in
// it; each figure is consistent on its own.
func (r *Recorder) Figures() Figures {
	f := Figures{Requests: r.requests.Load(), Errors: r.errors.Load(), Latency: make([]int64, LatencyBuckets)}
	for i := range r.hist {
		f.Latency[i] = r.hist[i].Load()
	}
	lat := make([]int64, 0, RecorderWindow)
	for i := range r.ring {
		v := r.ring[i].Load()
		if v == 0 {
			continue
		}
		v &^= 1 << 62
		f.WindowRequests++
		f.WindowErrors += v & 1
		lat = append(lat, v>>1)
	}
	slices.Sort(lat)
	f.P50, f.P99 = quantile(lat, 0.5), quantile(lat, 0.99)
	return f
}

// quantile is the q-quantile (seconds) of sorted nanoseconds, nearest rank.
func quantile(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := max(int(math.Ceil(q*float64(len(sorted))))-1, 0)
	return time.Duration(sorted[i]).Seconds()
}
