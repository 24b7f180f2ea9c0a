package api

import (
	"context"
	"net/http"

	"github.com/cordon-edr/cordon/collector/audit"
	"github.com/cordon-edr/cordon/collector/auth"
)

// auditNote collects what the audit entry of one call records beyond the
// request itself: the key, once authenticated, the object acted on, and
// the error of a failed call.
type auditNote struct {
	key    *auth.Key
	target string
	detail string
}

type noteCtx struct{}

// setTarget names the object a call acted on when its path does not,
// e.g. the command a POST created.
func setTarget(r *http.Request, target string) {
	if n, _ := r.Context().Value(noteCtx{}).(*auditNote); n != nil {
		n.target = target
	}
}

// maxDetail bounds the detail of an audit entry.
const maxDetail = 512

// record appends the audit entry of a call once its handler has written
// the answer, before the server finishes sending it: a client that has
// read the whole answer finds the entry. An entry that cannot be stored
// is logged as an error; the call itself already took effect.
func (s *server) record(r *http.Request, action string, n *auditNote, status int) {
	if s.Audit == nil {
		return
	}
	e := audit.Entry{Actor: "anonymous", Action: action, Target: n.target, Source: r.RemoteAddr, Status: status, Detail: n.detail}
	if n.key != nil {
		e.ActorID, e.Actor, e.Role = n.key.ID, n.key.Name, string(n.key.Role)
	}
	if len(e.Detail) > maxDetail {
		e.Detail = e.Detail[:maxDetail]
	}
	// The request's context may be cancelled once the answer is written;
	// the entry must still be stored.
	if _, err := s.Audit.Append(context.WithoutCancel(r.Context()), e); err != nil {
		s.log.Error("the audit trail could not record a call", "action", action, "actor", e.Actor, "status", status, "err", err)
	}
}

func (s *server) listAudit(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	items, next, err := s.Audit.List(r.Context(), audit.Query{
		Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), Outcome: q.Get("outcome"), Page: p,
	})
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}

func (s *server) verifyAudit(w http.ResponseWriter, r *http.Request) error {
	v, err := s.Audit.Verify(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
