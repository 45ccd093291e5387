// Package deploy holds what operators deploy next to vane: Prometheus
// recording and alerting rules (prometheus/) and a Grafana dashboard
// (grafana/). It has no code of its own; its tests check those files with
// the real tools (promtool) and against the metrics a vane registers.
package deploy
