package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// thehive creates a TheHive 5 alert per incident (or finding).
type thehive struct {
	cfg *SinkConfig
	cl  *http.Client
	url string
}

func newTheHive(c *SinkConfig) (*thehive, error) {
	cl, err := httpClient(c)
	if err != nil {
		return nil, err
	}
	return &thehive{cfg: c, cl: cl, url: strings.TrimRight(c.URL, "/") + "/api/v1/alert"}, nil
}

// hiveAlert is TheHive 5's InputAlert, with the fields Cordon fills.
type hiveAlert struct {
	Type        string           `json:"type"`
	Source      string           `json:"source"`
	SourceRef   string           `json:"sourceRef"`
	Title       string           `json:"title"`
	Description string           `json:"description"`
	Severity    int              `json:"severity"`
	Date        int64            `json:"date"`
	Tags        []string         `json:"tags"`
	TLP         int              `json:"tlp"`
	PAP         int              `json:"pap"`
	Observables []hiveObservable `json:"observables"`
}

type hiveObservable struct {
	DataType string   `json:"dataType"`
	Data     string   `json:"data"`
	Message  string   `json:"message,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	IOC      bool     `json:"ioc"`
}

func hiveSeverity(sev string) int {
	return max(severityRank(sev), 1)
}

func hivePriority(p string) int {
	switch p {
	case "P1":
		return 4
	case "P2":
		return 3
	case "P3":
		return 2
	}
	return 1
}

func (t *thehive) alert(ev *Event) hiveAlert {
	a := hiveAlert{Source: "cordon", TLP: 2, PAP: 2, Tags: []string{"cordon"}}
	if ev.Kind == KindFinding {
		f := ev.Finding
		a.Type, a.SourceRef = "cordon-finding", f.ID
		a.Title = ruleTitle(f) + " on " + ev.hostName(f.AgentID)
		a.Severity, a.Date = hiveSeverity(f.Severity), ms(f.DetectedAt)
		a.Description = fmt.Sprintf("%s\n\nSeverity: %s\nRule: %s %s\nAgent: %s\nIncident: %s",
			f.Summary, f.Severity, f.Rule.ID, f.Rule.Version, f.AgentID, f.IncidentID)
		a.Tags = append(a.Tags, f.Attack.Tactics...)
		a.Tags = append(a.Tags, f.Attack.Techniques...)
		if f.Drill {
			a.Tags = append(a.Tags, "drill")
		}
	} else {
		in := ev.Incident
		a.Type, a.SourceRef = "cordon-incident", in.ID
		a.Title = in.Title
		a.Severity, a.Date = hivePriority(in.Priority), ms(in.DetectedAt)
		a.Description = fmt.Sprintf("Cordon incident %s\n\nPriority: %s (impact %d, urgency %d)\nType: %s\nStatus: %s\nFindings: %s",
			in.ID, in.Priority, in.Impact, in.Urgency, in.Type, in.Status, strings.Join(in.FindingIDs, ", "))
		if ev.Finding != nil {
			a.Description += "\n\nFirst detection: " + ev.Finding.Summary
			a.Tags = append(a.Tags, ev.Finding.Attack.Tactics...)
			a.Tags = append(a.Tags, ev.Finding.Attack.Techniques...)
		}
		a.Tags = append(a.Tags, "priority:"+in.Priority, "type:"+in.Type)
		if in.Drill {
			a.Tags = append(a.Tags, "drill")
		}
	}
	o := ev.observables()
	a.Observables = []hiveObservable{}
	for _, h := range o.Hashes {
		a.Observables = append(a.Observables, hiveObservable{DataType: "hash", Data: h, Message: "sha256 of a file in the evidence", IOC: true})
	}
	for _, ip := range o.IPs {
		a.Observables = append(a.Observables, hiveObservable{DataType: "ip", Data: ip, Message: "address in the evidence"})
	}
	for _, h := range o.Hostnames {
		a.Observables = append(a.Observables, hiveObservable{DataType: "hostname", Data: h, Message: "affected host"})
	}
	return a
}

func (t *thehive) Send(ctx context.Context, ev *Event) error {
	b, err := json.Marshal(t.alert(ev))
	if err != nil {
		return &PermanentError{err}
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+t.cfg.Token)
	_, err = post(ctx, t.cl, t.url, b, hdr)
	var se *StatusError
	if errors.As(err, &se) && (se.Code == http.StatusBadRequest || se.Code == http.StatusConflict) &&
		strings.Contains(strings.ToLower(se.Body), "already exists") {
		// A redelivery: the alert with this type, source and
		// sourceRef is there.
		return nil
	}
	return err
}

func (t *thehive) Close() error {
	t.cl.CloseIdleConnections()
	return nil
}
