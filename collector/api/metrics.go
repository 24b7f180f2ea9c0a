package api

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"slices"
)

// metrics writes the Prometheus text exposition format (version 0.0.4).
func (s *server) metrics(w http.ResponseWriter, r *http.Request) error {
	var b bytes.Buffer
	metric := func(name, typ, help string, v uint64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	fs := s.Findings.Stats()
	metric("cordon_findings_stored_total", "counter", "Findings stored since the collector started.", fs.Stored)
	metric("cordon_findings_duplicates_total", "counter", "Findings received again, already stored, since the collector started.", fs.Duplicates)
	metric("cordon_findings_rejected_total", "counter", "Invalid findings skipped since the collector started.", fs.Rejected)
	metric("cordon_incidents_opened_total", "counter", "Incidents opened since the collector started.", s.Incidents.Stats().Opened)
	metric("cordon_agents_online", "gauge", "Agents connected with a recent heartbeat.", uint64(s.Agents.Online()))

	if s.Refusals != nil {
		refused := s.Refusals()
		b.WriteString("# HELP cordon_refused_total Connections, streams, enrollments and API connections refused, by reason.\n# TYPE cordon_refused_total counter\n")
		for _, reason := range slices.Sorted(maps.Keys(refused)) {
			fmt.Fprintf(&b, "cordon_refused_total{reason=%q} %d\n", reason, refused[reason])
		}
	}

	s.mu.Lock()
	requests := maps.Clone(s.requests)
	s.mu.Unlock()
	b.WriteString("# HELP cordon_api_requests_total API requests by response status code.\n# TYPE cordon_api_requests_total counter\n")
	for _, code := range slices.Sorted(maps.Keys(requests)) {
		fmt.Fprintf(&b, "cordon_api_requests_total{code=\"%d\"} %d\n", code, requests[code])
	}

	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, err := w.Write(b.Bytes())
	return err
}
