package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cordon-edr/cordon/collector/auth"
	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/events"
	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/registry"
	"github.com/cordon-edr/cordon/collector/store"
)

// maxBody is the largest request body accepted.
const maxBody = 1 << 20

// list is the shape of every listing.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

func writeList[T any](w http.ResponseWriter, items []T, next string) {
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, list[T]{Items: items, Next: next})
}

// page reads the limit and cursor query parameters.
func page(r *http.Request) (store.Page, error) {
	q := r.URL.Query()
	p := store.Page{Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return p, store.Invalid("limit", "want a positive integer (at most %d)", store.MaxLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// decode reads a JSON request body into v, refusing unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeMax(w, r, v, maxBody)
}

// decodeMax is decode with its own limit on the body's size.
func decodeMax(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var (
		te  *json.UnmarshalTypeError
		se  *json.SyntaxError
		mbe *http.MaxBytesError
	)
	switch {
	case err == nil:
		if dec.More() {
			return store.Invalid("", "more than one JSON value in the body")
		}
		return nil
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return store.Invalid("", "empty body: want a JSON object")
	case errors.As(err, &te):
		return store.Invalid(te.Field, "want a JSON %s, not %s", te.Type.Kind(), te.Value)
	case errors.As(err, &se):
		return store.Invalid("", "invalid JSON at byte %d: %v", se.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return store.Invalid(field, "unknown field")
	}
	return store.Invalid("", "invalid JSON body: %v", err)
}

func (s *server) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPIDoc)
	return err
}

// Agents.

func (s *server) listAgents(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.Agents.List(r.Context(), p)
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}

func (s *server) getAgent(w http.ResponseWriter, r *http.Request) error {
	a, err := s.Agents.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *server) revokeAgent(w http.ResponseWriter, r *http.Request) error {
	a, err := s.Agents.Revoke(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.log.Info("agent revoked through the API", "agent", a.ID, "by", caller(r).Name)
	s.Events.Publish(events.KindAgent, a.ID)
	writeJSON(w, http.StatusOK, a)
	return nil
}

// Findings.

func (s *server) listFindings(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	items, next, err := s.Findings.List(r.Context(), ingest.Query{
		Agent: q.Get("agent"), Incident: q.Get("incident"), Severity: q.Get("severity"), Page: p,
	})
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}

func (s *server) getFinding(w http.ResponseWriter, r *http.Request) error {
	f, err := s.Findings.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

// Incidents.

func (s *server) listIncidents(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	items, next, err := s.Incidents.List(r.Context(), incident.Query{
		Status: incident.Status(q.Get("status")), Agent: q.Get("agent"), Page: p,
	})
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}

func (s *server) getIncident(w http.ResponseWriter, r *http.Request) error {
	inc, err := s.Incidents.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inc)
	return nil
}

func (s *server) updateIncident(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Status   *incident.Status `json:"status"`
		Assignee *string          `json:"assignee"`
		Impact   *int             `json:"impact"`
		Urgency  *int             `json:"urgency"`
		Comment  *string          `json:"comment"`
		Review   *incident.Review `json:"review"`
		Check    *string          `json:"check"`
		Uncheck  *string          `json:"uncheck"`
		Approve  *string          `json:"approve"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	inc, err := s.Incidents.Update(r.Context(), r.PathValue("id"), incident.Change{
		Status: body.Status, Assignee: body.Assignee, Impact: body.Impact,
		Urgency: body.Urgency, Comment: body.Comment, Review: body.Review,
		Check: body.Check, Uncheck: body.Uncheck, Approve: body.Approve,
	}, caller(r).Name)
	if err != nil {
		return err
	}
	s.Events.Publish(events.KindIncident, inc.ID)
	writeJSON(w, http.StatusOK, inc)
	return nil
}

// Commands.

func (s *server) listCommands(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	items, next, err := s.Commands.List(r.Context(), command.Query{
		Agent: q.Get("agent"), Status: command.Status(q.Get("status")), Page: p,
	})
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}

func (s *server) getCommand(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Commands.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) createCommand(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		AgentID    string                     `json:"agent_id"`
		Action     string                     `json:"action"`
		Args       map[string]json.RawMessage `json:"args"`
		Reason     string                     `json:"reason"`
		IncidentID string                     `json:"incident_id"`
		TTL        string                     `json:"ttl"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	setTarget(r, body.AgentID)
	args, err := stringArgs(body.Args)
	if err != nil {
		return err
	}
	req := command.Request{
		AgentID: body.AgentID, Action: body.Action, Args: args, Reason: body.Reason,
		IncidentID: body.IncidentID, RequestedBy: caller(r).Name,
	}
	if body.TTL != "" {
		if req.TTL, err = time.ParseDuration(body.TTL); err != nil || req.TTL <= 0 {
			return store.Invalid("ttl", "want a positive duration such as \"1h\" or \"30m\"")
		}
	}
	if err := req.Validate(); err != nil {
		return err
	}
	agent, err := s.Agents.Get(r.Context(), req.AgentID)
	switch {
	case errors.Is(err, registry.ErrUnknownAgent):
		return store.Missing("agent_id", "no agent %s", req.AgentID)
	case err != nil:
		return err
	case agent.Revoked:
		return store.Conflict("agent_id", "agent %s is revoked", req.AgentID)
	}
	if req.IncidentID != "" {
		if _, err := s.Incidents.Get(r.Context(), req.IncidentID); errors.Is(err, store.ErrNotFound) {
			return store.Missing("incident_id", "no incident %s", req.IncidentID)
		} else if err != nil {
			return err
		}
	}
	if req.Action == command.ActionIsolate && s.BreakGlass != nil {
		if err := s.addBreakGlass(&req); err != nil {
			return err
		}
	}
	c, err := s.Commands.Create(r.Context(), req)
	if err != nil {
		return err
	}
	setTarget(r, c.ID)
	s.Events.Publish(events.KindCommand, c.ID)
	if c.IncidentID != "" {
		detail := fmt.Sprintf("%s on %s (command %s)", c.Action, agent.Hostname, c.ID)
		if c.Reason != "" {
			detail += ": " + c.Reason
		}
		if err := s.Incidents.Note(r.Context(), c.IncidentID, c.RequestedBy, incident.ActionCommand, detail); err != nil {
			s.log.Warn("noting a command on its incident", "command", c.ID, "incident", c.IncidentID, "err", err)
		}
		s.Events.Publish(events.KindIncident, c.IncidentID)
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

// stringArgs turns JSON argument values into the strings commands carry:
// strings as they are, numbers and booleans as written.
func stringArgs(raw map[string]json.RawMessage) (map[string]string, error) {
	args := make(map[string]string, len(raw))
	for k, v := range raw {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) > 0 && v[0] == '"':
			var str string
			if err := json.Unmarshal(v, &str); err != nil {
				return nil, store.Invalid("args."+k, "invalid string")
			}
			args[k] = str
		case string(v) == "true" || string(v) == "false":
			args[k] = string(v)
		case len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9'):
			args[k] = string(v)
		default:
			return nil, store.Invalid("args."+k, "want a string, number or boolean")
		}
	}
	return args, nil
}

// Enrollment tokens and the CA.

type tokenCreated struct {
	ID        string            `json:"id"`
	Token     string            `json:"token"`
	ExpiresAt time.Time         `json:"expires_at"`
	Uses      int               `json:"uses"`
	Tags      map[string]string `json:"tags"`
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		TTL  string            `json:"ttl"`
		Uses *int              `json:"uses"`
		Tags map[string]string `json:"tags"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	req := registry.TokenRequest{Uses: 1, Tags: body.Tags}
	if body.Uses != nil {
		if *body.Uses < 1 {
			return store.Invalid("uses", "must be positive")
		}
		req.Uses = *body.Uses
	}
	if body.TTL != "" {
		ttl, err := time.ParseDuration(body.TTL)
		if err != nil || ttl <= 0 {
			return store.Invalid("ttl", "want a positive duration such as \"24h\"")
		}
		req.TTL = ttl
	}
	t, secret, err := s.Agents.CreateToken(r.Context(), req)
	if err != nil {
		return err
	}
	setTarget(r, t.ID)
	writeJSON(w, http.StatusCreated, tokenCreated{ID: t.ID, Token: secret, ExpiresAt: t.ExpiresAt, Uses: t.Uses, Tags: t.Tags})
	return nil
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.Agents.Tokens(r.Context(), p)
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}

func (s *server) getCA(w http.ResponseWriter, r *http.Request) error {
	if len(s.CAPEM) == 0 || s.CAPin == "" {
		return errors.New("the collector has no CA certificate configured")
	}
	writeJSON(w, http.StatusOK, struct {
		Pin         string `json:"pin"`
		Certificate string `json:"certificate"`
	}{s.CAPin, string(s.CAPEM)})
	return nil
}

// API keys.

type keyCreated struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      auth.Role `json:"role"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *server) createKey(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Name string    `json:"name"`
		Role auth.Role `json:"role"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	k, secret, err := s.Keys.Create(r.Context(), body.Name, body.Role)
	if err != nil {
		return err
	}
	setTarget(r, k.ID)
	s.log.Info("API key created through the API", "key", k.ID, "role", k.Role, "by", caller(r).Name)
	writeJSON(w, http.StatusCreated, keyCreated{ID: k.ID, Name: k.Name, Role: k.Role, Key: secret, CreatedAt: k.CreatedAt})
	return nil
}

func (s *server) listKeys(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.Keys.List(r.Context(), p)
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}
