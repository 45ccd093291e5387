package monitor

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/vaneproxy/vane/monitor/decode"
)

// tickInterval is how often Run looks for windows that max_age closes
// while no sample arrives; a busy window is checked on every sample.
const tickInterval = time.Second

// Run starts the workers (sampling.workers of them), the webhook sender
// and the max_age ticker, and returns when ctx is done and all of them
// have stopped, after persisting learned references not yet saved.
// Samples still queued then are released unread. Run waits for the first
// Configure before it starts anything. A second concurrent Run returns at
// once.
//
// With one worker rows enter windows in queue order; with several,
// samples of one version may be applied in a slightly different order.
func (m *Monitor) Run(ctx context.Context) {
	if !m.running.CompareAndSwap(false, true) {
		m.log.Error("monitor: Run called while running")
		return
	}
	defer m.running.Store(false)
	select {
	case <-m.ready:
	case <-ctx.Done():
		m.persistAll()
		return
	}
	q := m.queue.Load()
	var wg sync.WaitGroup
	for range q.workers {
		wg.Go(func() { m.work(ctx, q) })
	}
	wg.Go(func() { m.hook.run(ctx) })
	wg.Go(func() { m.tick(ctx) })
	wg.Wait()
	for {
		select {
		case s := <-q.ch:
			q.dequeued(s)
			m.Release(s)
			continue
		default:
		}
		break
	}
	m.persistAll()
}

// worker holds one worker goroutine's reusable buffers.
type worker struct {
	dec    decode.Decoder
	rows   []decode.Row
	events []alertEvent
}

// batchPause is how long a worker that has emptied the queue waits before
// it looks again. Under load samples then arrive in batches: one wake-up
// of the worker per batch rather than one per sample, which on a single
// core (GOMAXPROCS=1, a sidecar's usual limit) was a goroutine switch per
// request. An idle worker blocks on the queue itself and costs nothing;
// a sample waits at most this long to be seen, which no window notices.
const batchPause = 2 * time.Millisecond

func (m *Monitor) work(ctx context.Context, q *sampleQueue) {
	w := &worker{}
	pause := time.NewTimer(batchPause)
	defer pause.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-q.ch:
			q.dequeued(s)
			m.safeProcess(w, s)
		}
		// Drain what else is queued, pause, and go on draining while the
		// pauses find samples waiting.
		for {
			m.drain(w, q)
			pause.Reset(batchPause)
			select {
			case <-ctx.Done():
				return
			case <-pause.C:
			}
			if len(q.ch) == 0 {
				break
			}
		}
	}
}

// drain processes samples until the queue is empty (other workers may be
// taking from it too).
func (m *Monitor) drain(w *worker, q *sampleQueue) {
	for {
		select {
		case s := <-q.ch:
			q.dequeued(s)
			m.safeProcess(w, s)
		default:
			return
		}
	}
}

// safeProcess is the worker's boundary: a panic on one sample (a decoder
// bug on a hostile payload) is logged and the worker goes on.
func (m *Monitor) safeProcess(w *worker, s *Sample) {
	model, version := s.Model, s.Version
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("monitor: panic processing a sample", "model", model, "version", version, "panic", r)
			w.dec, w.rows, w.events = decode.Decoder{}, nil, nil
		}
	}()
	m.process(w, s)
}

// MaxRowsPerSample caps the rows one sample (one request of a batch) adds to
// its version's window: the rest are not monitored.
const MaxRowsPerSample = 100

// process decodes one sample and feeds its rows to its version.
func (m *Monitor) process(w *worker, s *Sample) {
	defer m.Release(s)
	snap := m.snap.Load()
	if snap == nil {
		m.Drop(s.Model, ReasonNotConfigured)
		return
	}
	ms := snap.models[s.Model]
	if ms == nil {
		m.Drop(s.Model, ReasonUnknownModel)
		return
	}
	v := ms.versions[s.Version]
	if v == nil {
		m.Drop(s.Model, ReasonUnknownVersion)
		return
	}
	v.met.samples.Inc()
	v.nSamples.Add(1)
	rows, err := w.dec.Decode(w.rows[:0], ms.set.spec, &s.Input)
	w.rows = rows[:0]
	if err != nil {
		v.met.decodeErrors.Inc()
		v.nDecodeErrors.Add(1)
		m.log.Debug("monitor: sample not decoded", "model", s.Model, "version", s.Version,
			"request_id", s.RequestID, "err", err)
		return
	}
	if len(rows) > MaxRowsPerSample { // one request must not fill (or close) windows by itself
		rows = rows[:MaxRowsPerSample]
	}
	if m.onPred != nil {
		m.onPred(s.Model, s.Version, s.RequestID, rows)
	}
	var job *persistJob
	w.events, job = v.ingest(rows, m.now(), w.events[:0])
	m.emit(w.events)
	if job != nil {
		m.persist(v, job)
	}
}

// tick closes the windows that max_age closes while idle.
func (m *Monitor) tick(ctx context.Context) {
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.closeAged()
		}
	}
}

// closeAged closes every window whose max_age has passed with at least
// min_window rows.
func (m *Monitor) closeAged() {
	snap := m.snap.Load()
	if snap == nil {
		return
	}
	now := m.now()
	var ev []alertEvent
	for _, ms := range snap.order {
		for _, v := range ms.order {
			var job *persistJob
			ev, job = v.finish(v.closeAged(now, ev), nil)
			if job != nil {
				m.persist(v, job)
			}
		}
	}
	m.emit(ev)
}

// persist writes a learned reference; a failure is logged and retried
// when Run ends.
func (m *Monitor) persist(v *versionState, job *persistJob) {
	if job.alerts != nil {
		// After the reference it belongs to (deferred). Either file may
		// be missing after a crash: an alert state without its reference
		// is ignored, a reference without one starts with no alerts.
		defer func() {
			data, err := json.Marshal(job.alerts)
			if err == nil {
				err = writeFileAtomic(job.alertsPath, data)
			}
			if err != nil {
				m.log.Warn("saving drift alert state failed", "model", v.model, "version", v.version,
					"file", job.alertsPath, "err", err)
			}
		}()
	}
	if job.profile == nil {
		return
	}
	if err := saveState(job.path, job.profile); err != nil {
		m.log.Warn("saving drift reference failed", "model", v.model, "version", v.version,
			"file", job.path, "err", err)
		return
	}
	v.persistedTo(job.path)
	m.log.Info("drift reference saved", "model", v.model, "version", v.version, "file", job.path)
}

// persistAll saves every learned reference the state directory lacks.
func (m *Monitor) persistAll() {
	snap := m.snap.Load()
	if snap == nil {
		return
	}
	now := m.now()
	for _, ms := range snap.order {
		for _, v := range ms.order {
			v.mu.Lock()
			job := v.withAlerts(v.persistJob(now))
			v.mu.Unlock()
			if job != nil {
				m.persist(v, job)
			}
		}
	}
}
