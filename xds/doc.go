// Package xds carries vane's models over xDS: it translates configs models
// into Envoy resources (ToEnvoy) and Envoy resources back into a config
// that is validated exactly as a file (FromEnvoy, Compose); it serves them
// from a control plane (ControlPlane, Cache) and receives them in a
// sidecar (Client).
//
// The mapping (docs/fleet.md has the table): a model is a
// RouteConfiguration named after it, with one route whose weighted_clusters
// name one EDS Cluster per version ("model/version"), each with its
// ClusterLoadAssignment. Each model also gets an API listener of its name,
// for proxyless gRPC clients (xds:///model), and the group gets one HTTP
// listener (HTTPListenerName) with a combined RouteConfiguration a plain
// Envoy serves. What only vane enforces travels as
// metadata.filter_metadata["io.vane"].
//
// The package never imports proxy: the sidecar's wiring (cmd/vane) hands
// the composed config to the proxy.
package xds
