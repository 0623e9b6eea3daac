package imports

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// AlertmanagerMessage is the JSON body of Prometheus Alertmanager's webhook
// notification, version 4, as its notify/webhook package sends it (a Message embedding
// template.Data) and its docs (webhook_config) describe it. It is declared here rather
// than imported from github.com/prometheus/alertmanager: that module would add a third
// to PMO's module graph and upgrade a gRPC dependency that Temporal's SDK shares, for
// a dozen documented fields. Fields that newer Alertmanagers add are ignored.
type AlertmanagerMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of an Alertmanager notification.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// DefaultSiteLabel is the alert label that names the PMO site an alert is about.
const DefaultSiteLabel = "site"

// ReadAlertmanager reads an Alertmanager webhook notification and turns its alerts
// into anomaly events, keyed "alertmanager/<fingerprint>/<startsAt>" so that the
// repeats Alertmanager sends change nothing. A firing alert is an open event; a
// resolved one ends at its endsAt, which closes the event. The site is the value of
// the siteLabel label (DefaultSiteLabel when empty); the severity comes from the
// "severity" label (see AlertSeverity). Alerts without the site label, or without a
// fingerprint or start, or that do not make a valid event (planning.Event.Validate:
// a site name too long, a time out of bounds), are skipped and reported, not an
// error. A body that is not a version 4 notification is.
func ReadAlertmanager(r io.Reader, siteLabel string) ([]planning.KeyedEvent, []planning.SkippedEvent, error) {
	siteLabel = cmp.Or(siteLabel, DefaultSiteLabel)
	var m AlertmanagerMessage
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("an Alertmanager webhook body is JSON: %w", err)
	}
	if m.Version != "4" {
		return nil, nil, validation.Field("version", "must be \"4\", the Alertmanager webhook version PMO reads, got %q", m.Version)
	}
	var events []planning.KeyedEvent
	var skipped []planning.SkippedEvent
	for i, a := range m.Alerts {
		name := cmp.Or(a.Labels["alertname"], fmt.Sprintf("alert %d", i))
		site := a.Labels[siteLabel]
		key := "alertmanager/" + a.Fingerprint + "/" + a.StartsAt.UTC().Format(time.RFC3339Nano)
		skip := func(reason string) {
			skipped = append(skipped, planning.SkippedEvent{Key: key, Site: site, Reason: name + ": " + reason})
		}
		switch {
		case site == "":
			skip(fmt.Sprintf("no %q label names a PMO site", siteLabel))
			continue
		case a.Fingerprint == "":
			skip("no fingerprint")
			continue
		case a.StartsAt.IsZero():
			skip("no startsAt")
			continue
		}
		e := planning.KeyedEvent{Key: key, Event: planning.Event{
			Site: site, Kind: "anomaly", Severity: AlertSeverity(a.Labels["severity"]), Starts: a.StartsAt.UTC(),
			Detail: alertDetail(name, a), Source: "alertmanager",
		}}
		switch a.Status {
		case "firing":
		case "resolved":
			if !a.EndsAt.After(a.StartsAt) {
				skip("resolved without an endsAt after its startsAt")
				continue
			}
			e.Ends = a.EndsAt.UTC()
		default:
			skip(fmt.Sprintf("status must be firing or resolved, got %q", a.Status))
			continue
		}
		if err := e.Validate(""); err != nil { // a site name or time out of bounds
			skip(err.Error())
			continue
		}
		events = append(events, e)
	}
	return events, skipped, nil
}

// AlertSeverity maps an alert's severity label onto PMO's: critical, error, page,
// high and fatal are critical; warning, warn and medium are warning; anything else,
// none included, is info.
func AlertSeverity(label string) string {
	switch strings.ToLower(label) {
	case "critical", "error", "page", "high", "fatal":
		return "critical"
	case "warning", "warn", "medium":
		return "warning"
	}
	return "info"
}

// alertDetail describes an alert by name and its summary or description annotation.
func alertDetail(name string, a Alert) string {
	d := name
	if s := cmp.Or(a.Annotations["summary"], a.Annotations["description"]); s != "" {
		d += ": " + s
	}
	if a.GeneratorURL != "" {
		d += " (" + a.GeneratorURL + ")"
	}
	return d
}
