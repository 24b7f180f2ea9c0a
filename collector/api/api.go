package api

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cordon-edr/cordon/collector/audit"
	"github.com/cordon-edr/cordon/collector/auth"
	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/events"
	"github.com/cordon-edr/cordon/collector/hunt"
	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/iocset"
	"github.com/cordon-edr/cordon/collector/registry"
	"github.com/cordon-edr/cordon/collector/ruleset"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

// Config holds what the API serves. Every dependency is required.
type Config struct {
	Agents    *registry.Registry
	Findings  *ingest.Store
	Incidents *incident.Engine
	Commands  *command.Queue
	// Hunts is the hunt store; optional (the hunt routes answer 404
	// without it).
	Hunts *hunt.Store
	Keys  *auth.Keys
	Audit *audit.Log
	// Events receives a change event for every change made through the
	// API, and feeds GET /api/v1/events/stream; optional.
	Events *events.Hub
	// Console, when set, serves the web console at / and /assets/.
	Console http.Handler
	// CAPEM is the collector CA certificate in PEM; CAPin its pin
	// ("sha256:<hex>"), computed from CAPEM when empty.
	CAPEM []byte
	CAPin string
	// BreakGlass returns an agent's break-glass code; when nil, isolate
	// commands carry no code and the break-glass endpoint answers 404.
	BreakGlass func(agentID string) (string, error)
	Logger     *slog.Logger
	// Rules stores the rule sets pushed to the fleet; optional (the rules
	// routes answer 404 when nil).
	Rules *ruleset.Store
	// Indicators stores the indicator sets pushed to the fleet; optional.
	Indicators *iocset.Store
	// Exports is the export outbox; optional (no sinks when nil).
	Exports Exports
	// Refusals, when set, adds cordon_refused_total{reason} to /metrics:
	// what the agent gateway and the HTTP server turned away.
	Refusals func() map[string]uint64
}

type server struct {
	Config
	log *slog.Logger
	mux *http.ServeMux

	mu       sync.Mutex
	requests map[int]uint64
	tickets  map[string]ticket
	// keepalive is how often an event stream sends a comment and checks
	// its key.
	keepalive time.Duration
}

// route is one entry of the API: a ServeMux pattern, the role it needs
// ("" for none) and its handler.
type route struct {
	pattern string
	role    auth.Role
	handle  func(s *server, w http.ResponseWriter, r *http.Request) error
}

// auditActions names the audit action of routes that change something.
// Every route whose method is not GET is audited (see audited); one
// missing here is recorded under its pattern.
var auditActions = map[string]string{
	"POST /api/v1/agents/{id}/revoke":    "agent.revoke",
	"PATCH /api/v1/incidents/{id}":       "incident.update",
	"POST /api/v1/commands":              "command.create",
	"POST /api/v1/enroll-tokens":         "enroll_token.create",
	"POST /api/v1/api-keys":              "api_key.create",
	"POST /api/v1/api-keys/{id}/revoke":  "api_key.revoke",
	"POST /api/v1/exports/{sink}/replay": "export.replay",
	"POST /api/v1/rules":                 "rules.push",
	"POST /api/v1/iocs":                  "iocs.push",
	"POST /api/v1/hunts":                 "hunt.create",
	"POST /api/v1/incidents/{id}/hunt":   "incident.hunt",
	"POST /api/v1/incidents/{id}/hosts":  "incident.add_host",
}

// notAudited lists the routes that use a method other than GET but
// change nothing.
var notAudited = map[string]bool{
	"POST /api/v1/events/ticket": true,
}

// audited returns the audit action of rt, or "" when its calls are not
// recorded.
func audited(rt route) string {
	if strings.HasPrefix(rt.pattern, "GET ") || notAudited[rt.pattern] {
		return ""
	}
	if a, ok := auditActions[rt.pattern]; ok {
		return a
	}
	return rt.pattern
}

var routes = []route{
	{"GET /api/v1/openapi.json", "", (*server).openAPI},
	{"GET /metrics", "", (*server).metrics},

	{"GET /api/v1/agents", auth.RoleViewer, (*server).listAgents},
	{"GET /api/v1/agents/{id}", auth.RoleViewer, (*server).getAgent},
	{"POST /api/v1/agents/{id}/revoke", auth.RoleAdmin, (*server).revokeAgent},
	{"GET /api/v1/agents/{id}/break-glass", auth.RoleAdmin, (*server).getBreakGlass},

	{"GET /api/v1/findings", auth.RoleViewer, (*server).listFindings},
	{"GET /api/v1/findings/{id}", auth.RoleViewer, (*server).getFinding},

	{"GET /api/v1/incidents", auth.RoleViewer, (*server).listIncidents},
	{"GET /api/v1/incidents/stats", auth.RoleViewer, (*server).incidentStats},
	{"GET /api/v1/incidents/{id}", auth.RoleViewer, (*server).getIncident},
	{"PATCH /api/v1/incidents/{id}", auth.RoleResponder, (*server).updateIncident},
	{"POST /api/v1/incidents/{id}/hunt", auth.RoleResponder, (*server).huntIncident},
	{"POST /api/v1/incidents/{id}/hosts", auth.RoleResponder, (*server).addIncidentHost},

	{"GET /api/v1/hunts", auth.RoleViewer, (*server).listHunts},
	{"POST /api/v1/hunts", auth.RoleResponder, (*server).createHunt},
	{"GET /api/v1/hunts/{id}", auth.RoleViewer, (*server).getHunt},

	{"GET /api/v1/commands", auth.RoleViewer, (*server).listCommands},
	{"POST /api/v1/commands", auth.RoleResponder, (*server).createCommand},
	{"GET /api/v1/commands/{id}", auth.RoleViewer, (*server).getCommand},

	{"GET /api/v1/enroll-tokens", auth.RoleAdmin, (*server).listTokens},
	{"POST /api/v1/enroll-tokens", auth.RoleAdmin, (*server).createToken},
	{"GET /api/v1/ca", auth.RoleViewer, (*server).getCA},

	{"GET /api/v1/api-keys", auth.RoleAdmin, (*server).listKeys},
	{"POST /api/v1/api-keys", auth.RoleAdmin, (*server).createKey},

	{"GET /api/v1/exports", auth.RoleViewer, (*server).listExports},
	{"POST /api/v1/exports/{sink}/replay", auth.RoleAdmin, (*server).replayExport},
	{"POST /api/v1/api-keys/{id}/revoke", auth.RoleAdmin, (*server).revokeKey},

	{"GET /api/v1/rules", auth.RoleViewer, (*server).getRules},
	{"POST /api/v1/rules", auth.RoleAdmin, (*server).pushRules},
	{"GET /api/v1/iocs", auth.RoleViewer, (*server).getIocs},
	{"POST /api/v1/iocs", auth.RoleAdmin, (*server).pushIocs},

	{"GET /api/v1/audit", auth.RoleAdmin, (*server).listAudit},
	{"GET /api/v1/audit/verify", auth.RoleAdmin, (*server).verifyAudit},

	{"GET /api/v1/me", auth.RoleViewer, (*server).me},
	{"POST /api/v1/events/ticket", auth.RoleViewer, (*server).createTicket},
	{"GET /api/v1/events/stream", roleTicket, (*server).stream},
}

// New returns the API's handler.
func New(cfg Config) http.Handler {
	s := &server{Config: cfg, log: cfg.Logger, mux: http.NewServeMux(), requests: make(map[int]uint64), tickets: make(map[string]ticket), keepalive: keepalive}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.CAPin == "" && len(s.CAPEM) > 0 {
		if b, _ := pem.Decode(s.CAPEM); b != nil {
			s.CAPin = protocol.CAPin(b.Bytes)
		} else {
			s.log.Error("the CA certificate is not PEM; /api/v1/ca will fail")
		}
	}
	for _, rt := range routes {
		s.mux.Handle(rt.pattern, s.wrap(rt))
	}
	if s.Console != nil {
		s.mux.Handle("GET /{$}", s.Console)
		s.mux.Handle("GET /assets/", s.Console)
	}
	return s
}

// ServeHTTP counts every response by status and answers requests no route
// matches with a JSON error.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	defer func() { s.count(sw.status()) }()
	if h, pattern := s.mux.Handler(r); pattern == "" {
		// No route: learn what the mux would answer (404, 405 with Allow,
		// or a redirect to the clean path) and answer in JSON where it is
		// an error.
		rec := &recorder{header: make(http.Header)}
		h.ServeHTTP(rec, r)
		switch rec.code {
		case http.StatusNotFound:
			writeError(sw, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path, "")
		case http.StatusMethodNotAllowed:
			sw.Header().Set("Allow", rec.header.Get("Allow"))
			writeError(sw, http.StatusMethodNotAllowed, fmt.Sprintf("%s not allowed on %s", r.Method, r.URL.Path), "")
		default:
			for k, v := range rec.header {
				sw.Header()[k] = v
			}
			sw.WriteHeader(rec.code)
			sw.Write(rec.body.Bytes())
		}
		return
	}
	s.mux.ServeHTTP(sw, r)
}

type keyCtx struct{}

// caller returns the API key of the request.
func caller(r *http.Request) *auth.Key {
	k, _ := r.Context().Value(keyCtx{}).(*auth.Key)
	if k == nil {
		return &auth.Key{Name: "anonymous"}
	}
	return k
}

// roleTicket marks the route that authenticates with a ticket from
// POST /api/v1/events/ticket in its query instead of a bearer key:
// browsers cannot set headers on an EventSource.
const roleTicket auth.Role = "ticket"

// wrap authenticates and authorizes the request for rt, runs its handler,
// turns a returned error into a JSON error response and, when rt changes
// something, records the call in the audit trail whatever its outcome.
func (s *server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var note *auditNote
		if action := audited(rt); action != "" {
			note = &auditNote{target: r.PathValue("id")}
			r = r.WithContext(context.WithValue(r.Context(), noteCtx{}, note))
			sw := &statusWriter{ResponseWriter: w}
			w = sw
			defer func() { s.record(r, action, note, sw.status()) }()
		}
		if rt.role == roleTicket {
			key, ok := s.redeemTicket(r.URL.Query().Get("ticket"))
			if !ok {
				writeError(w, http.StatusUnauthorized, "missing, unknown or expired ticket: get one from POST /api/v1/events/ticket", "ticket")
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), keyCtx{}, key))
		} else if rt.role != "" {
			scheme, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			secret = strings.TrimSpace(secret)
			if !strings.EqualFold(scheme, "Bearer") || secret == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="cordon"`)
				s.log.Warn("API request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", "no API key")
				writeError(w, http.StatusUnauthorized, "missing bearer API key", "")
				return
			}
			key, err := s.Keys.Authenticate(r.Context(), secret)
			if errors.Is(err, auth.ErrUnknownKey) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="cordon", error="invalid_token"`)
				s.log.Warn("API request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", "unknown or revoked API key")
				writeError(w, http.StatusUnauthorized, "unknown or revoked API key", "")
				return
			}
			if err != nil {
				s.fail(w, r, err)
				return
			}
			if note != nil {
				note.key = key
			}
			if !key.Role.Allows(rt.role) {
				s.log.Warn("API request refused", "method", r.Method, "path", r.URL.Path, "key", key.Name, "role", key.Role, "needs", rt.role)
				writeError(w, http.StatusForbidden, fmt.Sprintf("this needs the %s role; key %q has %s", rt.role, key.Name, key.Role), "")
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), keyCtx{}, key))
		}
		if err := rt.handle(s, w, r); err != nil {
			if note != nil {
				note.detail = err.Error()
			}
			s.fail(w, r, err)
		}
	})
}

// fail answers with the error err stands for.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var fe *store.FieldError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &fe):
		code := http.StatusBadRequest
		switch fe.Kind {
		case store.ErrConflict:
			code = http.StatusConflict
		case store.ErrNotFound:
			code = http.StatusNotFound
		}
		writeError(w, code, fe.Msg, fe.Field)
	case errors.As(err, &mbe):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("body larger than %d bytes", mbe.Limit), "")
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error(), "")
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, err.Error(), "")
	default:
		s.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error", "")
	}
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, code int, msg, field string) {
	writeJSON(w, code, errorBody{Error: msg, Field: field})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "encoding the response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func (s *server) count(code int) {
	s.mu.Lock()
	s.requests[code]++
	s.mu.Unlock()
}

// statusWriter remembers the status of a response.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recorder captures what the mux answers to a request no route matches.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}
