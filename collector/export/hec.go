package export

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// hecPath is the HTTP Event Collector's JSON event endpoint.
const hecPath = "/services/collector/event"

// hec posts each event to Splunk's HTTP Event Collector.
type hec struct {
	cfg *SinkConfig
	cl  *http.Client
	url string
}

func newHEC(c *SinkConfig) (*hec, error) {
	cl, err := httpClient(c)
	if err != nil {
		return nil, err
	}
	u := strings.TrimRight(c.URL, "/")
	if !strings.HasSuffix(u, hecPath) {
		u += hecPath
	}
	return &hec{cfg: c, cl: cl, url: u}, nil
}

// hecEvent is the HEC envelope of one event.
type hecEvent struct {
	Time       float64         `json:"time"`
	Host       string          `json:"host,omitempty"`
	Source     string          `json:"source"`
	Sourcetype string          `json:"sourcetype"`
	Index      string          `json:"index,omitempty"`
	Event      json.RawMessage `json:"event"`
	Fields     map[string]any  `json:"fields,omitempty"`
}

func (h *hec) envelope(ev *Event) ([]byte, error) {
	doc, err := body(h.cfg.Format, ev)
	if err != nil {
		return nil, err
	}
	e := hecEvent{
		Time:       float64(ev.At.UnixMilli()) / 1000,
		Source:     h.cfg.Source,
		Sourcetype: h.cfg.Sourcetype,
		Index:      h.cfg.Index,
		Event:      doc,
		Fields:     map[string]any{"cordon_kind": ev.Kind, "cordon_event_id": ev.ID},
	}
	if e.Source == "" {
		e.Source = "cordon"
	}
	if e.Sourcetype == "" {
		e.Sourcetype = "cordon:" + h.cfg.Format
	}
	switch {
	case ev.Finding != nil && ev.Kind == KindFinding:
		e.Host = ev.hostName(ev.Finding.AgentID)
	case ev.Command != nil:
		e.Host = ev.hostName(ev.Command.AgentID)
	case ev.Incident != nil && len(ev.Incident.AffectedHosts) == 1:
		e.Host = ev.hostName(ev.Incident.AffectedHosts[0])
	}
	return json.Marshal(e)
}

func (h *hec) Send(ctx context.Context, ev *Event) error {
	b, err := h.envelope(ev)
	if err != nil {
		return &PermanentError{err}
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Splunk "+h.cfg.Token)
	hdr.Set("X-Splunk-Request-Channel", ev.ID)
	rb, err := post(ctx, h.cl, h.url, b, hdr)
	if err != nil {
		return err
	}
	var ack struct {
		Text string `json:"text"`
		Code *int   `json:"code"`
	}
	if json.Unmarshal(rb, &ack) == nil && ack.Code != nil && *ack.Code != 0 {
		return fmt.Errorf("splunk HEC answered code %d: %s", *ack.Code, ack.Text)
	}
	return nil
}

func (h *hec) Close() error {
	h.cl.CloseIdleConnections()
	return nil
}
