// Package monitor is vane's online drift monitor. The proxy hands it
// sampled request/response pairs through a bounded queue that never
// blocks (Offer drops and counts when full); worker goroutines decode each
// pair for the model's protocol (package decode) into rows of features and
// predictions, learn or load a reference per (model, version), fill
// tumbling live windows, and when a window closes compare it with the
// reference (package stats: ks, psi, js, wasserstein, chi2), correct the
// p-values across the version's features, and raise or clear per-feature
// alerts with hysteresis. Results go to Prometheus metrics, the log, the
// GET /drift report (Report, Handler) and an optional webhook in
// Alertmanager's shape.
//
// Memory is bounded by (reference + window) values × features × versions:
// at most MaxFeatures features per version, at most 256 categories per
// categorical feature. docs/drift.md documents the methods, the reference
// profile format (ProfileFormat), the metrics and the figures.
package monitor

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/monitor/decode"
)

// Options are the Monitor's dependencies.
type Options struct {
	// Registerer receives the monitor's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Logger receives alerts and state changes; nil discards.
	Logger *slog.Logger
	// Now is the clock for windows' ages and alert times; nil is time.Now.
	Now func() time.Time
	// HTTPClient posts webhook alerts; nil is a client with a 10s timeout.
	HTTPClient *http.Client
	// OnPrediction, when set, is called by the workers with the rows of
	// every sample decoded without error (the ground-truth join keeps the
	// predictions). The rows are valid only during the call and must not
	// be modified; it must not block.
	OnPrediction func(model, version, requestID string, rows []decode.Row)
}

// Monitor is the drift monitor. Create it with New, apply a config with
// Configure (again on every reload), and start it with Run. Its methods
// are safe for concurrent use.
type Monitor struct {
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	hook    *webhook
	pool    sync.Pool // of *Sample
	onPred  func(model, version, requestID string, rows []decode.Row)

	queue atomic.Pointer[sampleQueue] // set by the first Configure
	ready chan struct{}               // closed by the first Configure
	snap  atomic.Pointer[snapshot]    // the applied config and its state

	cfgMu   sync.Mutex // serializes Configure
	running atomic.Bool
}

// sampleQueue is the queue between the proxy and the workers; its size
// and worker count are fixed by the first Configure.
type sampleQueue struct {
	ch      chan *Sample
	workers int
	bytes   atomic.Int64 // body bytes of the samples in ch, at most MaxQueueBytes
}

// snapshot is one applied config: immutable, swapped whole by Configure.
type snapshot struct {
	models map[string]*modelState
	order  []*modelState
}

// modelState is one model of a snapshot.
type modelState struct {
	name     string
	set      settings
	versions map[string]*versionState
	order    []*versionState
	dropped  [len(knownReasons)]prometheus.Counter
	fileHash string      // content hash of the reference file, for refKey
	fileRef  *refProfile // the reference file's profile, bins frozen
}

// New returns a Monitor with its metrics registered. It starts nothing.
func New(opts Options) (*Monitor, error) {
	m := &Monitor{log: opts.Logger, now: opts.Now, ready: make(chan struct{}), onPred: opts.OnPrediction}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.pool.New = newSample
	met, err := newMetrics(opts.Registerer, m.queueLen, m.queueCap)
	if err != nil {
		return nil, err
	}
	m.metrics = met
	m.hook = newWebhook(opts.HTTPClient, m.log, met)
	return m, nil
}

func (m *Monitor) queueLen() float64 {
	if q := m.queue.Load(); q != nil {
		return float64(len(q.ch))
	}
	return 0
}

func (m *Monitor) queueCap() float64 {
	if q := m.queue.Load(); q != nil {
		return float64(cap(q.ch))
	}
	return 0
}

// Configure applies a validated config. Per (model, version) the state
// survives when its settings allow:
//
//   - protocol, features, paths or prediction_path changed (what the
//     features mean), or the reference source changed (warmup count,
//     file path or content, reference version): the version starts over
//     (reference, window, results, alerts; raised alerts are resolved);
//   - window, min_window or max_age changed: the current live window's
//     rows are dropped; reference, last results and alerts are kept;
//   - anything else (bins, thresholds, correction, alert_on, consecutive,
//     webhook_url, sample_rate, max_body_bytes): applies from the next
//     window close, nothing is lost (new bins re-freeze the reference's
//     edges from its kept values).
//
// A version that leaves the config is forgotten, with its metric series.
// A reference file that cannot be loaded fails Configure, naming the file,
// and nothing changes. sampling.queue_size and sampling.workers are fixed
// by the first Configure; a later change is logged as needing a restart.
//
// Configure is Prepare followed by Plan.Commit.
func (m *Monitor) Configure(cfg *configs.Config) error {
	p, err := m.Prepare(cfg)
	if err != nil {
		return err
	}
	p.Commit()
	return nil
}

// Plan is a config prepared by Monitor.Prepare: what could fail (reading
// reference files) is done, nothing is applied yet.
type Plan struct {
	m      *Monitor
	cfg    *configs.Config
	sets   []settings
	files  []*profileFile
	hashes []string
}

// Prepare does the part of Configure that can fail: it derives each
// model's settings and reads its reference file. It changes nothing the
// Monitor serves; a Plan that is never committed is dropped with nothing to
// undo. Plans are committed in the order they were prepared, one Prepare
// and Commit at a time (the caller serialises them; Configure does both).
func (m *Monitor) Prepare(cfg *configs.Config) (*Plan, error) {
	if cfg == nil {
		return nil, errors.New("monitor: nil config")
	}
	p := &Plan{m: m, cfg: cfg, sets: make([]settings, len(cfg.Models)),
		files: make([]*profileFile, len(cfg.Models)), hashes: make([]string, len(cfg.Models))}
	for i := range cfg.Models {
		mc := &cfg.Models[i]
		p.sets[i] = newSettings(mc)
		if p.sets[i].refMode != refFile {
			continue
		}
		f, hash, err := readProfile(p.sets[i].refFile, MaxProfileValues)
		if err != nil {
			return nil, fmt.Errorf("monitor: model %s: reference file %s: %w", mc.Name, p.sets[i].refFile, err)
		}
		p.files[i], p.hashes[i] = f, hash
	}
	return p, nil
}

// Commit applies a prepared config (see Configure for what each version
// keeps). It cannot fail.
func (p *Plan) Commit() {
	m, cfg, sets, files, hashes := p.m, p.cfg, p.sets, p.files, p.hashes
	m.cfgMu.Lock()
	defer m.cfgMu.Unlock()

	m.configureQueue(cfg.Sampling)

	old := m.snap.Load()
	if old == nil {
		old = &snapshot{}
	}
	now := m.now()
	snap := &snapshot{models: make(map[string]*modelState, len(cfg.Models))}
	var ev []alertEvent
	for i := range cfg.Models {
		mc := &cfg.Models[i]
		ms := &modelState{name: mc.Name, set: sets[i], versions: map[string]*versionState{}, fileHash: hashes[i]}
		for j, r := range knownReasons {
			ms.dropped[j] = m.metrics.dropped.WithLabelValues(mc.Name, r)
		}
		oldMs := old.models[mc.Name]
		if files[i] != nil {
			var left []string
			ms.fileRef, left = files[i].reference(refFile.String(), sets[i].refFile, sets[i].spec.Features, sets[i].bins)
			if oldMs == nil || oldMs.fileHash != hashes[i] {
				if len(left) > 0 {
					m.log.Warn("reference file has more features than the monitor tracks; ignoring some",
						"model", mc.Name, "file", sets[i].refFile, "max", MaxFeatures, "ignored", len(left))
				}
				m.log.Info("drift reference loaded from file", "model", mc.Name, "file", sets[i].refFile,
					"rows", ms.fileRef.rows, "features", len(ms.fileRef.features))
			}
		}
		for _, vc := range mc.Versions {
			var prev *versionState
			if oldMs != nil {
				prev = oldMs.versions[vc.Name]
			}
			vs, retired := m.versionFor(prev, ms, vc.Name, cfg.StateDir)
			if retired != nil {
				ev = retired.retire(now, ev)
				m.metrics.forgetDrift(mc.Name, vc.Name)
			}
			ms.versions[vc.Name] = vs
			ms.order = append(ms.order, vs)
		}
		for _, vs := range ms.order {
			vs.mu.Lock()
			vs.src = ms.versions[ms.set.refVersion] // nil unless version mode
			vs.mu.Unlock()
		}
		snap.models[mc.Name] = ms
		snap.order = append(snap.order, ms)
	}
	m.forgetRemoved(old, snap, now, &ev)
	m.snap.Store(snap)
	m.emit(ev)
	if m.queue.Load() != nil {
		select {
		case <-m.ready:
		default:
			close(m.ready)
		}
	}
}

// configureQueue creates the queue on the first call and logs later
// changes, which need a restart.
func (m *Monitor) configureQueue(s configs.Sampling) {
	size, workers := s.QueueSize, s.Workers
	q := m.queue.Load()
	if q == nil {
		m.queue.Store(&sampleQueue{ch: make(chan *Sample, size), workers: workers})
		return
	}
	if cap(q.ch) != size || q.workers != workers {
		m.log.Warn("sampling.queue_size and sampling.workers take effect on restart",
			"queue_size", cap(q.ch), "workers", q.workers, "configured_queue_size", size, "configured_workers", workers)
	}
}

// forgetRemoved retires the versions of old that snap no longer has.
func (m *Monitor) forgetRemoved(old, snap *snapshot, now time.Time, ev *[]alertEvent) {
	for _, oms := range old.order {
		nms := snap.models[oms.name]
		for _, vs := range oms.order {
			if nms != nil && nms.versions[vs.version] != nil {
				continue
			}
			*ev = vs.retire(now, *ev)
			m.metrics.forgetVersion(vs.model, vs.version)
			m.log.Info("drift monitor state dropped: version left the config", "model", vs.model, "version", vs.version)
		}
		if nms == nil {
			for _, r := range knownReasons { // exact labels: DeletePartialMatch is O(series)
				m.metrics.dropped.DeleteLabelValues(oms.name, r)
			}
		}
	}
}

// retire marks a state replaced and resolves its raised alerts.
func (v *versionState) retire(now time.Time, ev []alertEvent) []alertEvent {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.retired = true
	return v.resolveAll(now, ev)
}
