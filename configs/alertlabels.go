package configs

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// DefaultAlertSeverity is monitor.alert_severity when absent.
const DefaultAlertSeverity = "warning"

// labelName is a Prometheus / Alertmanager label name.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// severityValue is what monitor.alert_severity may be.
var severityValue = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// reservedLabels are set by vane on every drift alert; alert_labels may not
// replace them.
var reservedLabels = map[string]bool{"alertname": true, "model": true, "version": true, "feature": true, "severity": true}

// ExpandEnv replaces ${NAME} and $NAME in s with the environment variable's
// value (for alert_labels and generator_url: the pod and namespace from the
// Kubernetes Downward API, say). A variable that is not set is an error, so
// a typo never turns into an empty label.
func ExpandEnv(s string) (string, error) {
	var missing []string
	out := os.Expand(s, func(name string) string {
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

// alerts checks the keys that shape the webhook's alerts.
func (v *validator) alerts(mon *Monitor, p string) {
	for name, value := range mon.AlertLabels {
		q := p + ".alert_labels." + name
		switch {
		case !labelName.MatchString(name):
			v.add(q, "label names are [a-zA-Z_][a-zA-Z0-9_]*; got %q", name)
		case reservedLabels[name]:
			v.add(q, "%q is set by vane on every drift alert (use alert_severity for the severity)", name)
		}
		if _, err := ExpandEnv(value); err != nil {
			v.add(q, "%v", err)
		}
	}
	if mon.AlertSeverity != "" && !severityValue.MatchString(mon.AlertSeverity) {
		v.add(p+".alert_severity", "must be a lower-case word such as warning or critical; got %q", mon.AlertSeverity)
	}
	if mon.GeneratorURL != "" {
		u, err := ExpandEnv(mon.GeneratorURL)
		if err != nil {
			v.add(p+".generator_url", "%v", err)
		} else if msg, shown := webhookProblem(u); msg != "" {
			v.add(p+".generator_url", "%s; got %q", msg, shown)
		}
	}
}
