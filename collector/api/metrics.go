package api

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/store"
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
	is := s.Incidents.Stats()
	metric("cordon_incidents_opened_total", "counter", "Incidents opened since the collector started.", is.Opened)
	var backlog uint64
	if end := s.Findings.End(); is.Offset > 0 && end > is.Offset {
		backlog = end - is.Offset
	}
	metric("cordon_incident_engine_backlog", "gauge", "Findings log positions stored and not yet correlated into incidents (at most that many findings: duplicates leave positions empty).", backlog)
	metric("cordon_agents_online", "gauge", "Agents connected with a recent heartbeat.", uint64(s.Agents.Online()))
	if err := s.incidentMetrics(r.Context(), &b); err != nil {
		return err
	}
	if err := s.incidentCounts(r.Context(), &b); err != nil {
		return err
	}

	s.exportMetrics(r.Context(), &b)
	commandLatency(&b, s.Commands.Latencies())
	if s.Events != nil {
		metric("cordon_event_streams", "gauge", "Open server-sent event streams (web consoles).", uint64(s.Events.Subscribers()))
	}

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

// incidentCounts writes the number of incidents by status and priority,
// counted over every stored incident.
func (s *server) incidentCounts(ctx context.Context, b *bytes.Buffer) error {
	type key struct{ status, priority string }
	counts := map[key]uint64{}
	p := store.Page{Limit: store.MaxLimit}
	for {
		items, next, err := s.Incidents.List(ctx, incident.Query{Page: p})
		if err != nil {
			return fmt.Errorf("counting incidents: %w", err)
		}
		for _, inc := range items {
			counts[key{string(inc.Status), inc.Priority}]++
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	b.WriteString("# HELP cordon_incidents Incidents by status and priority.\n# TYPE cordon_incidents gauge\n")
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b key) int {
		if a.status != b.status {
			return strings.Compare(a.status, b.status)
		}
		return strings.Compare(a.priority, b.priority)
	})
	for _, k := range keys {
		fmt.Fprintf(b, "cordon_incidents{status=%q,priority=%q} %d\n", k.status, k.priority, counts[k])
	}
	return nil
}

// commandLatency writes the histogram of the time from a command's
// creation to its result, by action.
func commandLatency(b *bytes.Buffer, hs []command.Latency) {
	b.WriteString("# HELP cordon_command_latency_seconds Time from a command's creation to its agent's result.\n# TYPE cordon_command_latency_seconds histogram\n")
	for _, h := range hs {
		for i, le := range command.LatencyBuckets {
			fmt.Fprintf(b, "cordon_command_latency_seconds_bucket{action=%q,le=%q} %d\n", h.Action, strconv.FormatFloat(le, 'g', -1, 64), h.Buckets[i])
		}
		fmt.Fprintf(b, "cordon_command_latency_seconds_bucket{action=%q,le=\"+Inf\"} %d\n", h.Action, h.Count)
		fmt.Fprintf(b, "cordon_command_latency_seconds_sum{action=%q} %s\n", h.Action, strconv.FormatFloat(h.Sum, 'g', -1, 64))
		fmt.Fprintf(b, "cordon_command_latency_seconds_count{action=%q} %d\n", h.Action, h.Count)
	}
}
