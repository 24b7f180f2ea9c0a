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

	"github.com/cordon-edr/cordon/collector/auth"
	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/registry"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

// Config holds what the API serves. Every dependency is required.
type Config struct {
	Agents    *registry.Registry
	Findings  *ingest.Store
	Incidents *incident.Engine
	Commands  *command.Queue
	Keys      *auth.Keys
	// CAPEM is the collector CA certificate in PEM; CAPin its pin
	// ("sha256:<hex>"), computed from CAPEM when empty.
	CAPEM  []byte
	CAPin  string
	Logger *slog.Logger
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
}

// route is one entry of the API: a ServeMux pattern, the role it needs
// ("" for none) and its handler.
type route struct {
	pattern string
	role    auth.Role
	handle  func(s *server, w http.ResponseWriter, r *http.Request) error
}

var routes = []route{
	{"GET /api/v1/openapi.json", "", (*server).openAPI},
	{"GET /metrics", "", (*server).metrics},

	{"GET /api/v1/agents", auth.RoleViewer, (*server).listAgents},
	{"GET /api/v1/agents/{id}", auth.RoleViewer, (*server).getAgent},
	{"POST /api/v1/agents/{id}/revoke", auth.RoleAdmin, (*server).revokeAgent},

	{"GET /api/v1/findings", auth.RoleViewer, (*server).listFindings},
	{"GET /api/v1/findings/{id}", auth.RoleViewer, (*server).getFinding},

	{"GET /api/v1/incidents", auth.RoleViewer, (*server).listIncidents},
	{"GET /api/v1/incidents/{id}", auth.RoleViewer, (*server).getIncident},
	{"PATCH /api/v1/incidents/{id}", auth.RoleResponder, (*server).updateIncident},

	{"GET /api/v1/commands", auth.RoleViewer, (*server).listCommands},
	{"POST /api/v1/commands", auth.RoleResponder, (*server).createCommand},
	{"GET /api/v1/commands/{id}", auth.RoleViewer, (*server).getCommand},

	{"GET /api/v1/enroll-tokens", auth.RoleAdmin, (*server).listTokens},
	{"POST /api/v1/enroll-tokens", auth.RoleAdmin, (*server).createToken},
	{"GET /api/v1/ca", auth.RoleViewer, (*server).getCA},

	{"GET /api/v1/api-keys", auth.RoleAdmin, (*server).listKeys},
	{"POST /api/v1/api-keys", auth.RoleAdmin, (*server).createKey},
}

// New returns the API's handler.
func New(cfg Config) http.Handler {
	s := &server{Config: cfg, log: cfg.Logger, mux: http.NewServeMux(), requests: make(map[int]uint64)}
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

// wrap authenticates and authorizes the request for rt, runs its handler
// and turns a returned error into a JSON error response.
func (s *server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.role != "" {
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
			if !key.Role.Allows(rt.role) {
				s.log.Warn("API request refused", "method", r.Method, "path", r.URL.Path, "key", key.Name, "role", key.Role, "needs", rt.role)
				writeError(w, http.StatusForbidden, fmt.Sprintf("this needs the %s role; key %q has %s", rt.role, key.Name, key.Role), "")
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), keyCtx{}, key))
		}
		if err := rt.handle(s, w, r); err != nil {
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
