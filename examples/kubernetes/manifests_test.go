package kubernetes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	kjson "sigs.k8s.io/json"

	"github.com/vaneproxy/vane/configs"
	"github.com/vaneproxy/vane/internal/testutil"
)

// The Prometheus Operator kinds are CRDs, not in k8s.io/api: these are the
// parts of them the manifests use, decoded as strictly as the rest.
type podMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Selector            metav1.LabelSelector `json:"selector"`
		PodMetricsEndpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

type ruleGroups struct {
	Groups []struct {
		Name     string `json:"name" yaml:"name"`
		Interval string `json:"interval,omitempty" yaml:"interval,omitempty"`
		Rules    []struct {
			Record      string            `json:"record,omitempty" yaml:"record,omitempty"`
			Alert       string            `json:"alert,omitempty" yaml:"alert,omitempty"`
			Expr        string            `json:"expr" yaml:"expr"`
			For         string            `json:"for,omitempty" yaml:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`
		} `json:"rules" yaml:"rules"`
	} `json:"groups" yaml:"groups"`
}

type prometheusRule struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            ruleGroups        `json:"spec"`
}

// manifests are the decoded objects of every manifest file, by kind.
type manifests struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  []*corev1.ConfigMap
	podMonitors []*podMonitor
	rules       []*prometheusRule
}

// strict decodes one YAML document into v through JSON with the decoder
// Kubernetes' strict serializer uses (sigs.k8s.io/json): field names are
// case-sensitive, and an unknown or repeated field anywhere is an error.
func strict(doc any, v any) error {
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(raw, v, kjson.DisallowUnknownFields, kjson.DisallowDuplicateFields)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// load decodes every document of every *.yaml file in dirs (the
// control-plane/ folder belongs to the xds example and has its own test).
func load(t *testing.T, dirs ...string) manifests {
	t.Helper()
	var m manifests
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		require.NoError(t, err)
		require.NotEmpty(t, files, dir)
		for _, f := range files {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			dec := yaml.NewDecoder(bytes.NewReader(raw))
			for i := 0; ; i++ {
				var doc map[string]any
				if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
					break
				} else {
					require.NoError(t, err, "%s document %d", f, i)
				}
				if doc == nil {
					continue
				}
				where := fmt.Sprintf("%s document %d (%v)", f, i, doc["kind"])
				var obj any
				switch fmt.Sprint(doc["apiVersion"], " ", doc["kind"]) {
				case "apps/v1 Deployment":
					d := &appsv1.Deployment{}
					m.deployments, obj = append(m.deployments, d), d
				case "v1 Service":
					s := &corev1.Service{}
					m.services, obj = append(m.services, s), s
				case "v1 ConfigMap":
					c := &corev1.ConfigMap{}
					m.configMaps, obj = append(m.configMaps, c), c
				case "monitoring.coreos.com/v1 PodMonitor":
					p := &podMonitor{}
					m.podMonitors, obj = append(m.podMonitors, p), p
				case "monitoring.coreos.com/v1 PrometheusRule":
					r := &prometheusRule{}
					m.rules, obj = append(m.rules, r), r
				default:
					t.Fatalf("%s: a kind this test does not know; teach it", where)
				}
				require.NoError(t, strict(doc, obj), where)
			}
		}
	}
	return m
}

func TestStrictDecodingCatchesTypos(t *testing.T) {
	var d appsv1.Deployment
	err := strict(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"terminationGracePeriod": 30}}}}, &d)
	assert.ErrorContains(t, err, "terminationGracePeriod")
	err = strict(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"securityContext": map[string]any{"runAsNonroot": true}}}}}, &d)
	assert.ErrorContains(t, err, "runAsNonroot", "field names are case-sensitive, as in Kubernetes")
}

// TestManifests decodes every manifest and checks that the Deployment, the
// Service and the PodMonitor agree with the vane config in the ConfigMap.
func TestManifests(t *testing.T) {
	m := load(t, ".", "monitoring")
	require.Len(t, m.deployments, 1)
	require.Len(t, m.configMaps, 1)
	require.Len(t, m.services, 1)
	require.Len(t, m.podMonitors, 1)
	require.Len(t, m.rules, 1)
	dep, cm, svc, pm := m.deployments[0], m.configMaps[0], m.services[0], m.podMonitors[0]
	pod := &dep.Spec.Template

	// vane is a native sidecar: an init container that keeps running.
	var vane *corev1.Container
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == "vane" {
			vane = &pod.Spec.InitContainers[i]
		}
	}
	require.NotNil(t, vane, "vane runs as an init container")

	// The vane config is valid, as `vane validate` would say in the pod:
	// with the container's environment, and only with it (a ${VAR} the
	// container does not set fails validation).
	for _, e := range vane.Env {
		t.Setenv(e.Name, "from-"+strings.ToLower(e.Name))
	}
	raw, ok := cm.Data["vane.yaml"]
	require.True(t, ok, "the ConfigMap holds vane.yaml")
	cfg, err := configs.Parse([]byte(raw))
	require.NoError(t, err, "the ConfigMap's vane.yaml must pass validation with the container's env")
	require.NotNil(t, vane.RestartPolicy)
	assert.Equal(t, corev1.ContainerRestartPolicyAlways, *vane.RestartPolicy, "a native sidecar")

	// The config path in the args is the ConfigMap's key where it is mounted.
	cfgPath := argAfter(vane.Args, "-config")
	require.NotEmpty(t, cfgPath, "vane serve -config PATH")
	assert.Equal(t, "serve", vane.Args[0])
	mounted := false
	for _, vm := range vane.VolumeMounts {
		for _, vol := range pod.Spec.Volumes {
			if vol.Name == vm.Name && vol.ConfigMap != nil && vol.ConfigMap.Name == cm.Name &&
				filepath.Join(vm.MountPath, "vane.yaml") == cfgPath {
				mounted = true
			}
		}
	}
	assert.True(t, mounted, "%s is the ConfigMap %s's vane.yaml, mounted", cfgPath, cm.Name)

	// Ports: the data plane and the metrics listener bind every interface
	// on the ports the container declares; admin stays on loopback.
	ports := map[string]int32{}
	for _, p := range vane.Ports {
		ports[p.Name] = p.ContainerPort
	}
	dataHost, dataPort := hostPort(t, cfg.Listen)
	assert.Equal(t, ports["http"], dataPort, "container port http is listen's")
	assert.Contains(t, []string{"", "0.0.0.0", "::"}, dataHost, "listen must be reachable from the Service")
	require.NotEmpty(t, cfg.Metrics.Listen, "metrics.listen serves the probes and the scrapes")
	metricsHost, metricsPort := hostPort(t, cfg.Metrics.Listen)
	assert.Equal(t, ports["metrics"], metricsPort, "container port metrics is metrics.listen's")
	assert.Contains(t, []string{"", "0.0.0.0", "::"}, metricsHost)
	adminHost, _ := hostPort(t, cfg.Admin.Listen)
	assert.True(t, net.ParseIP(adminHost).IsLoopback(), "admin stays on loopback")

	// Probes reach the metrics listener, which serves /readyz and /healthz.
	require.NotNil(t, vane.ReadinessProbe)
	require.NotNil(t, vane.ReadinessProbe.HTTPGet)
	assert.Equal(t, "/readyz", vane.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, metricsPort, resolve(t, vane.ReadinessProbe.HTTPGet.Port, ports))
	for _, p := range []*corev1.Probe{vane.LivenessProbe, vane.StartupProbe} {
		if p != nil {
			require.NotNil(t, p.HTTPGet)
			assert.Equal(t, "/healthz", p.HTTPGet.Path)
			assert.Equal(t, metricsPort, resolve(t, p.HTTPGet.Port, ports))
		}
	}

	// Every endpoint of the config is a model container of the pod.
	models := map[string]bool{}
	for _, c := range pod.Spec.Containers {
		if l := argAfter(c.Args, "-listen"); l != "" {
			models["http://"+l] = true
		}
	}
	for _, mod := range cfg.Models {
		for _, v := range mod.Versions {
			for _, ep := range v.Endpoints {
				assert.True(t, models[ep], "endpoint %s of %s/%s is a container of the pod", ep, mod.Name, v.Name)
			}
		}
	}

	// Shutdown fits: the longest preStop of the models, then vane's drain.
	require.NotNil(t, pod.Spec.TerminationGracePeriodSeconds)
	grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	var preStop time.Duration
	for _, c := range append(append([]corev1.Container{}, pod.Spec.Containers...), *vane) {
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			require.NotNil(t, c.Lifecycle.PreStop.Sleep, "%s: preStop sleeps (the images have no shell)", c.Name)
			preStop = max(preStop, time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second)
		}
	}
	assert.Positive(t, preStop, "a preStop lets the Service stop sending before the models stop")
	assert.GreaterOrEqual(t, grace, preStop+cfg.Shutdown.DrainTimeout+5*time.Second,
		"terminationGracePeriodSeconds must cover the preStop sleep, drain_timeout (%s) and a margin", cfg.Shutdown.DrainTimeout)

	// The Service and the PodMonitor select the pod and name vane's ports.
	assert.Equal(t, ports["http"], resolve(t, svc.Spec.Ports[0].TargetPort, ports), "the Service targets vane's data port")
	assert.True(t, selects(svc.Spec.Selector, pod.Labels), "the Service selects the pod")
	assert.True(t, selects(pm.Spec.Selector.MatchLabels, pod.Labels), "the PodMonitor selects the pod")
	require.Len(t, pm.Spec.PodMetricsEndpoints, 1)
	assert.Equal(t, metricsPort, ports[pm.Spec.PodMetricsEndpoints[0].Port], "the PodMonitor scrapes metrics.listen")
	assert.Equal(t, "/metrics", pm.Spec.PodMetricsEndpoints[0].Path)
	assert.True(t, selects(dep.Spec.Selector.MatchLabels, pod.Labels))
}

// TestPrometheusRuleMatchesRulesFile: the PrometheusRule carries exactly
// the groups of deploy/prometheus/vane.rules.yaml, and promtool accepts them.
func TestPrometheusRuleMatchesRulesFile(t *testing.T) {
	m := load(t, "monitoring")
	require.Len(t, m.rules, 1)
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "vane.rules.yaml"))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	var want ruleGroups
	require.NoError(t, strict(doc, &want))
	assert.Equal(t, want, m.rules[0].Spec, "copy the groups of deploy/prometheus/vane.rules.yaml into monitoring/prometheusrule.yaml")

	promtool := testutil.Promtool(t)
	out, err := yaml.Marshal(m.rules[0].Spec)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(f, out, 0o600))
	res, err := exec.Command(promtool, "check", "rules", f).CombinedOutput()
	assert.NoError(t, err, "promtool check rules:\n%s", res)
}

func argAfter(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func hostPort(t *testing.T, addr string) (string, int32) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(port)
	require.NoError(t, err)
	return host, int32(n)
}

// resolve turns a probe's or a Service's port (a number or a container
// port's name) into a number.
func resolve(t *testing.T, p intstr.IntOrString, named map[string]int32) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	n, ok := named[p.StrVal]
	require.True(t, ok, "no container port named %q", p.StrVal)
	return n
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
