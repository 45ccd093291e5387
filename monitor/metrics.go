package monitor

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// The reasons of vane_monitor_samples_dropped_total. The proxy reports the
// first three through Drop (and Offer reports queue_full itself); the
// monitor adds the others when a queued sample finds nothing to feed.
const (
	ReasonBodyTooLarge   = "body_too_large" // the proxy skipped a body over max_body_bytes
	ReasonQueueFull      = "queue_full"     // Offer found the queue full
	ReasonStreamAborted  = "stream_aborted" // the exchange ended before its body was complete
	ReasonNotConfigured  = "not_configured" // Offer before the first Configure
	ReasonUnknownModel   = "unknown_model"  // the model left the config while its sample queued
	ReasonUnknownVersion = "unknown_version"
)

// knownReasons get a cached counter per model, so that dropping costs no
// allocation on the proxy's path.
var knownReasons = [...]string{ReasonBodyTooLarge, ReasonQueueFull, ReasonStreamAborted,
	ReasonUnknownModel, ReasonUnknownVersion}

// The reasons of vane_monitor_values_skipped_total.
const (
	skipKindMismatch = "kind_mismatch"
	skipNonFinite    = "non_finite"
)

// metrics are the monitor's Prometheus metrics. Label values are bounded:
// model and version names come from the config, feature names are capped
// at MaxFeatures per version, methods and reasons are fixed sets.
type metrics struct {
	samples         *prometheus.CounterVec
	dropped         *prometheus.CounterVec
	decodeErrors    *prometheus.CounterVec
	rows            *prometheus.CounterVec
	windowsClosed   *prometheus.CounterVec
	featuresIgnored *prometheus.CounterVec
	valuesSkipped   *prometheus.CounterVec
	referenceReady  *prometheus.GaugeVec
	referenceRows   *prometheus.GaugeVec
	score           *prometheus.GaugeVec
	detected        *prometheus.GaugeVec
	pValue          *prometheus.GaugeVec
	binTotal        *prometheus.CounterVec
	binCumulative   *prometheus.CounterVec
	refBins         *prometheus.GaugeVec
	refCumulative   *prometheus.GaugeVec
	webhookErrors   *prometheus.CounterVec
	webhookSent     prometheus.Counter
	queueLength     prometheus.GaugeFunc
	queueCapacity   prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, queueLen, queueCap func() float64) (*metrics, error) {
	mv := []string{"model", "version"}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels []string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	m := &metrics{
		samples: counter("vane_monitor_samples_total",
			"Samples taken off the monitor queue for each configured version (decoded or not).", mv),
		dropped: counter("vane_monitor_samples_dropped_total",
			"Samples not monitored, by model and reason (body_too_large, queue_full, stream_aborted, not_configured, unknown_model, unknown_version).",
			[]string{"model", "reason"}),
		decodeErrors: counter("vane_monitor_decode_errors_total",
			"Samples whose payload could not be decoded for the model's protocol; they are skipped.", mv),
		rows: counter("vane_monitor_rows_total",
			"Decoded rows (observations); a batched request holds several. Windows and references count rows.", mv),
		windowsClosed: counter("vane_monitor_windows_closed_total",
			"Live windows closed (full, or aged out with at least min_window rows).", mv),
		featuresIgnored: counter("vane_monitor_features_ignored_total",
			"Values of feature names beyond the per-version cap of 128 features (or longer than 128 bytes), ignored.", mv),
		valuesSkipped: counter("vane_monitor_values_skipped_total",
			"Feature values skipped, by reason: kind_mismatch (a number where the feature is categorical or the reverse), non_finite (NaN or infinity).",
			[]string{"model", "version", "reason"}),
		referenceReady: gauge("vane_monitor_reference_ready",
			"1 when the version has a reference to compare its windows with, else 0.", mv),
		referenceRows: gauge("vane_monitor_reference_rows",
			"Rows in the version's reference (during warmup: collected so far).", mv),
		score: gauge("vane_drift_score",
			"Statistic of each drift method on the last closed window against the reference (ks: D; chi2: the chi-square statistic; psi; js distance; normalised wasserstein).",
			[]string{"model", "version", "feature", "method"}),
		detected: gauge("vane_drift_detected",
			"1 while the feature's drift alert is raised (after hysteresis), else 0.",
			[]string{"model", "version", "feature"}),
		pValue: gauge("vane_drift_p_value",
			"The corrected p-value behind each verdict on the last closed window: ks and chi2 after the correction across the version's features; cusum, the sequential detector's false-alarm rate per window at the feature's evidence (the alert is raised when it is below monitor.false_alarm_rate).",
			[]string{"model", "version", "feature", "method"}),
		binTotal: counter("vane_monitor_bin_total",
			"Values of closed windows per bin of the reference (numeric: frozen quantile bins 0..K-1; categorical: reference category index, or other), for fleet-wide drift in Prometheus.",
			[]string{"model", "version", "feature", "bin"}),
		binCumulative: counter("vane_monitor_bin_cumulative_total",
			"Values of closed windows in numeric bins 0..bin (running totals of vane_monitor_bin_total), for a fleet-wide binned KS.",
			[]string{"model", "version", "feature", "bin"}),
		refBins: gauge("vane_monitor_reference_bin_values",
			"The reference's values per bin, the cells of vane_monitor_bin_total (numeric: bin proportion times values profiled).",
			[]string{"model", "version", "feature", "bin"}),
		refCumulative: gauge("vane_monitor_reference_bin_cumulative_values",
			"The reference's values in numeric bins 0..bin (running totals of vane_monitor_reference_bin_values), for a fleet-wide binned KS.",
			[]string{"model", "version", "feature", "bin"}),
		webhookErrors: counter("vane_monitor_webhook_errors_total",
			"Alert notifications not delivered, by reason: queue_full (dropped before sending), send (failed after all attempts).",
			[]string{"reason"}),
		webhookSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "vane_monitor_webhook_sent_total",
			Help: "Alert notifications delivered to webhooks (2xx answer)."}),
		queueLength: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vane_monitor_queue_length",
			Help: "Samples waiting in the monitor queue."}, queueLen),
		queueCapacity: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vane_monitor_queue_capacity",
			Help: "Capacity of the monitor queue (sampling.queue_size; fixed by the first config)."}, queueCap),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.samples, m.dropped, m.decodeErrors, m.rows,
		m.windowsClosed, m.featuresIgnored, m.valuesSkipped, m.referenceReady, m.referenceRows,
		m.score, m.detected, m.pValue, m.binTotal, m.binCumulative, m.refBins, m.refCumulative, m.webhookErrors, m.webhookSent, m.queueLength, m.queueCapacity} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("monitor: registering metrics: %w", err)
		}
	}
	m.webhookErrors.WithLabelValues("queue_full")
	m.webhookErrors.WithLabelValues("send")
	return m, nil
}

// versionMetrics are one version's series, resolved once so that the
// worker's per-sample path does no label lookups.
type versionMetrics struct {
	samples, decodeErrors, rows, windowsClosed, featuresIgnored prometheus.Counter
	kindMismatch, nonFinite                                     prometheus.Counter
	referenceReady, referenceRows                               prometheus.Gauge
}

func (m *metrics) forVersion(model, version string) versionMetrics {
	return versionMetrics{
		samples:         m.samples.WithLabelValues(model, version),
		decodeErrors:    m.decodeErrors.WithLabelValues(model, version),
		rows:            m.rows.WithLabelValues(model, version),
		windowsClosed:   m.windowsClosed.WithLabelValues(model, version),
		featuresIgnored: m.featuresIgnored.WithLabelValues(model, version),
		kindMismatch:    m.valuesSkipped.WithLabelValues(model, version, skipKindMismatch),
		nonFinite:       m.valuesSkipped.WithLabelValues(model, version, skipNonFinite),
		referenceReady:  m.referenceReady.WithLabelValues(model, version),
		referenceRows:   m.referenceRows.WithLabelValues(model, version),
	}
}

// forgetVersion deletes every series of a version that left the config or
// whose state was reset (the drift series of its features included).
func (m *metrics) forgetVersion(model, version string) {
	// Exact label values: DeletePartialMatch scans the whole vector, which
	// made removing n versions O(n²) (10k versions: minutes).
	for _, v := range []*prometheus.CounterVec{m.samples, m.decodeErrors, m.rows, m.windowsClosed, m.featuresIgnored} {
		v.DeleteLabelValues(model, version)
	}
	m.valuesSkipped.DeleteLabelValues(model, version, skipKindMismatch)
	m.valuesSkipped.DeleteLabelValues(model, version, skipNonFinite)
	m.referenceReady.DeleteLabelValues(model, version)
	m.referenceRows.DeleteLabelValues(model, version)
	m.forgetDrift(model, version)
}

// forgetDrift deletes the drift series of a version whose features are
// reset but whose counters carry on.
func (m *metrics) forgetDrift(model, version string) {
	labels := prometheus.Labels{"model": model, "version": version}
	m.score.DeletePartialMatch(labels)
	m.detected.DeletePartialMatch(labels)
	m.pValue.DeletePartialMatch(labels)
	m.binTotal.DeletePartialMatch(labels)
	m.binCumulative.DeletePartialMatch(labels)
	m.refBins.DeletePartialMatch(labels)
	m.refCumulative.DeletePartialMatch(labels)
}
