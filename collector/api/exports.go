package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cordon-edr/cordon/collector/export"
	"github.com/cordon-edr/cordon/collector/store"
)

// Exports is the outbox of the export sinks.
type Exports interface {
	Status(ctx context.Context) ([]export.SinkStatus, error)
	Replay(ctx context.Context, sink string) (int, error)
}

func (s *server) listExports(w http.ResponseWriter, r *http.Request) error {
	var items []export.SinkStatus
	if s.Exports != nil {
		var err error
		if items, err = s.Exports.Status(r.Context()); err != nil {
			return err
		}
	}
	writeList(w, items, "")
	return nil
}

func (s *server) replayExport(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("sink")
	if s.Exports == nil {
		return store.Missing("sink", "no export sink %q: none is configured", name)
	}
	n, err := s.Exports.Replay(r.Context(), name)
	if errors.Is(err, export.ErrUnknownSink) {
		return store.Missing("sink", "no export sink %q is configured", name)
	}
	if err != nil {
		return err
	}
	s.log.Info("export dead-letter queue replayed", "sink", name, "events", n, "by", caller(r).Name)
	writeJSON(w, http.StatusOK, struct {
		Sink     string `json:"sink"`
		Replayed int    `json:"replayed"`
	}{name, n})
	return nil
}

// exportMetrics writes the per-sink export metrics.
func (s *server) exportMetrics(ctx context.Context, b *bytes.Buffer) {
	if s.Exports == nil {
		return
	}
	sinks, err := s.Exports.Status(ctx)
	if err != nil {
		s.log.Error("reading export status for /metrics", "err", err)
		return
	}
	family := func(name, typ, help string, v func(export.SinkStatus) uint64) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, st := range sinks {
			fmt.Fprintf(b, "%s{sink=%q,type=%q} %d\n", name, st.Name, st.Type, v(st))
		}
	}
	family("cordon_export_queue_depth", "gauge", "Events waiting for delivery, per sink.",
		func(st export.SinkStatus) uint64 { return uint64(st.Queued) })
	family("cordon_export_dead_letter_depth", "gauge", "Events parked in the dead-letter queue, per sink.",
		func(st export.SinkStatus) uint64 { return uint64(st.Dead) })
	family("cordon_export_delivered_total", "counter", "Events delivered since the collector started, per sink.",
		func(st export.SinkStatus) uint64 { return st.DeliveredTotal })
	family("cordon_export_failed_total", "counter", "Failed delivery attempts since the collector started, per sink.",
		func(st export.SinkStatus) uint64 { return st.FailedTotal })
	family("cordon_export_dead_lettered_total", "counter", "Events parked in the dead-letter queue since the collector started, per sink.",
		func(st export.SinkStatus) uint64 { return st.DeadLetteredTotal })
}
