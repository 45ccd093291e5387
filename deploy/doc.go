// Package deploy holds what operators deploy next to vane: Prometheus
// recording and alerting rules (prometheus/) and a Grafana dashboard
// (grafana/). It has no code of its own; its tests check those files with
// the real tools (promtool) and against the metrics a vane registers, and
// check the repository's Dockerfile as far as that is possible without a
// container engine.
package deploy
