package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cordon-edr/cordon/collector/events"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/detectors/ioc"
)

// maxIocsBody bounds a pushed indicator set's request: the set's own
// limit with room for JSON escaping.
const maxIocsBody = 2*ioc.MaxBytes + 1<<20

// iocSetView is the answer of GET /api/v1/iocs. Version is empty while
// no set was pushed.
type iocSetView struct {
	Version    string         `json:"version"`
	Indicators int            `json:"indicators"`
	Types      map[string]int `json:"types"`
	Name       string         `json:"name,omitempty"`
	Digest     string         `json:"sha256,omitempty"`
	PushedBy   string         `json:"pushed_by,omitempty"`
	PushedAt   time.Time      `json:"pushed_at,omitzero"`
}

func (s *server) getIocs(w http.ResponseWriter, r *http.Request) error {
	if s.Indicators == nil {
		return fmt.Errorf("this collector keeps no indicator sets: %w", store.ErrNotFound)
	}
	info, err := s.Indicators.Info(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusOK, iocSetView{Types: map[string]int{}})
		return nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, iocSetView(*info))
	return nil
}

// refusedIocs is the 400 answer to a set with bad indicators.
type refusedIocs struct {
	Error    string        `json:"error"`
	Field    string        `json:"field"`
	Problems []ioc.Problem `json:"problems"`
}

func (s *server) pushIocs(w http.ResponseWriter, r *http.Request) error {
	if s.Indicators == nil {
		return fmt.Errorf("this collector keeps no indicator sets: %w", store.ErrNotFound)
	}
	var body struct {
		Name    string  `json:"name"`
		Content *string `json:"content"`
	}
	if err := decodeMax(w, r, &body, maxIocsBody); err != nil {
		return err
	}
	if body.Content == nil {
		return store.Invalid("content", "missing: want the indicator file (CSV or a STIX 2.1 bundle) as a string")
	}
	if len(body.Name) > 256 {
		return store.Invalid("name", "longer than 256 bytes")
	}
	info, err := s.Indicators.Push(r.Context(), body.Name, []byte(*body.Content), caller(r).Name)
	var pe *ioc.Error
	if errors.As(err, &pe) {
		if n, _ := r.Context().Value(noteCtx{}).(*auditNote); n != nil {
			n.detail = pe.Error()
		}
		writeJSON(w, http.StatusBadRequest, refusedIocs{Error: pe.Error(), Field: "content", Problems: pe.Problems})
		return nil
	}
	if err != nil {
		return err
	}
	setTarget(r, info.Version)
	s.Events.Publish(events.KindAgent, "")
	writeJSON(w, http.StatusCreated, iocSetView(*info))
	return nil
}
