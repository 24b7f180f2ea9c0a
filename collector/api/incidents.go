package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
)

func (s *server) incidentStats(w http.ResponseWriter, r *http.Request) error {
	f, err := s.Incidents.Figures(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

// incidentMetrics writes the service-level figures of real incidents;
// drills stay out of them.
func (s *server) incidentMetrics(ctx context.Context, b *bytes.Buffer) error {
	f, err := s.Incidents.Figures(ctx)
	if err != nil {
		return err
	}
	m := f.Real
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v)
	}
	gauge("cordon_incidents_open", "Real incidents not in a final status.", float64(m.Open))
	gauge("cordon_incidents_mttd_seconds", "Mean time from the first observed finding to the incident opening, drills excluded.", m.MTTD)
	gauge("cordon_incidents_mtta_seconds", "Mean time from opening to acknowledgement, drills excluded.", m.MTTA)
	gauge("cordon_incidents_mttc_seconds", "Mean time from opening to containment, drills excluded.", m.MTTC)
	gauge("cordon_incidents_mttr_seconds", "Mean time from opening to resolution, drills excluded.", m.MTTR)
	gauge("cordon_incidents_acknowledge_breaches", "Real incidents acknowledged late or not yet and past their target.", float64(m.AcknowledgeBreaches))
	gauge("cordon_incidents_contain_breaches", "Real incidents contained late or not yet and past their target.", float64(m.ContainBreaches))
	return nil
}
