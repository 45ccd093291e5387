// Package kubernetes holds the Kubernetes manifests of a model pod with vane
// as a native sidecar (deployment.yaml, configmap.yaml, service.yaml) and
// its Prometheus Operator objects (monitoring/). It has no code: its test
// decodes every manifest strictly into the Kubernetes API types and checks
// that ports, probes, paths and timeouts agree with the vane config the
// ConfigMap holds.
package kubernetes
