package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cordon-edr/cordon/collector/hunt"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// huntBody is the body of POST /api/v1/hunts (and, without query, of
// POST /api/v1/incidents/{id}/hunt).
type huntBody struct {
	Query      string `json:"query"`
	Agents     string `json:"agents"`
	Since      string `json:"since"`
	TTL        string `json:"ttl"`
	Budget     string `json:"budget"`
	MaxMatches int    `json:"max_matches"`
	IncidentID string `json:"incident_id"`
}

func duration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, store.Invalid(field, "want a positive duration such as \"24h\" or \"30m\", not %q", v)
	}
	return d, nil
}

func (s *server) hunts() (*hunt.Store, error) {
	if s.Hunts == nil {
		return nil, fmt.Errorf("hunts: %w", store.ErrNotFound)
	}
	return s.Hunts, nil
}

// startHunt validates body, resolves its agents and stores the hunt.
func (s *server) startHunt(r *http.Request, body huntBody) (*hunt.Hunt, error) {
	hs, err := s.hunts()
	if err != nil {
		return nil, err
	}
	sel, err := hunt.ParseSelector(body.Agents)
	if err != nil {
		return nil, err
	}
	req := hunt.Request{
		Query: body.Query, Selector: sel, MaxMatches: body.MaxMatches,
		IncidentID: body.IncidentID, CreatedBy: caller(r).Name,
	}
	if req.Since, err = duration("since", body.Since); err != nil {
		return nil, err
	}
	if req.TTL, err = duration("ttl", body.TTL); err != nil {
		return nil, err
	}
	if req.Budget, err = duration("budget", body.Budget); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	var targets []hunt.Target
	known := map[string]bool{}
	page := store.Page{Limit: store.MaxLimit}
	for {
		agents, next, err := s.Agents.List(r.Context(), page)
		if err != nil {
			return nil, err
		}
		for _, a := range agents {
			known[a.ID] = true
			if !a.Revoked && sel.Match(a.ID, a.Tags) {
				targets = append(targets, hunt.Target{ID: a.ID, Hostname: a.Hostname})
			}
		}
		if next == "" {
			break
		}
		page.Cursor = next
	}
	if err := sel.Check(known); err != nil {
		return nil, err
	}
	return hs.Create(r.Context(), req, targets)
}

func (s *server) createHunt(w http.ResponseWriter, r *http.Request) error {
	var body huntBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	if body.IncidentID != "" {
		if _, err := s.Incidents.Get(r.Context(), body.IncidentID); errors.Is(err, store.ErrNotFound) {
			return store.Missing("incident_id", "no incident %s", body.IncidentID)
		} else if err != nil {
			return err
		}
	}
	h, err := s.startHunt(r, body)
	if err != nil {
		return err
	}
	setTarget(r, h.ID)
	writeJSON(w, http.StatusCreated, h)
	return nil
}

func (s *server) listHunts(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.hunts()
	if err != nil {
		return err
	}
	p, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := hs.List(r.Context(), p)
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}

func (s *server) getHunt(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.hunts()
	if err != nil {
		return err
	}
	h, err := hs.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

// huntIncident starts a hunt for an incident's indicators: the hashes and
// addresses it correlates on and the executables of its findings that are
// not in the system's own folders.
func (s *server) huntIncident(w http.ResponseWriter, r *http.Request) error {
	var body huntBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	if body.Query != "" || body.IncidentID != "" {
		return store.Invalid("query", "an incident's hunt builds its own query from the incident")
	}
	id := r.PathValue("id")
	setTarget(r, id)
	inc, err := s.Incidents.Get(r.Context(), id)
	if err != nil {
		return err
	}
	var hashes, addrs, exes []string
	for _, ind := range inc.Indicators {
		kind, v, _ := strings.Cut(ind, ":")
		switch kind {
		case "sha256":
			hashes = append(hashes, v)
		case "ip":
			if a, err := netip.ParseAddr(v); err == nil {
				addrs = append(addrs, a.String())
			}
		}
	}
	for _, fid := range inc.FindingIDs {
		f, err := s.Findings.Get(r.Context(), fid)
		if err != nil {
			continue
		}
		var evs []ecs.Event
		if json.Unmarshal(f.Evidence, &evs) != nil {
			continue
		}
		for _, ev := range evs {
			if ev.Process != nil && huntableExecutable(ev.Process.Executable) {
				exes = append(exes, ev.Process.Executable)
			}
			if ev.File != nil && ev.File.Hash != nil && ev.File.Hash.SHA256 != "" {
				hashes = append(hashes, ev.File.Hash.SHA256)
			}
		}
	}
	q := indicatorQuery(hashes, addrs, exes)
	if q == "" {
		return store.Conflict("indicators", "incident %s has no hash, address or executable outside the system folders to hunt for", id)
	}
	body.Query, body.IncidentID = q, id
	h, err := s.startHunt(r, body)
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("hunt %s started for the incident's indicators on %d agents: %s", h.ID, h.Counts.Agents, q)
	if err := s.Incidents.Note(r.Context(), id, caller(r).Name, "hunt_started", detail); err != nil {
		s.log.Warn("noting a hunt on its incident", "incident", id, "err", err)
	}
	writeJSON(w, http.StatusCreated, h)
	return nil
}

// systemDirs hold executables that every host has: hunting for them
// would match the whole fleet.
var systemDirs = []string{"/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/libexec/", "/lib/", "/usr/local/bin/", "/snap/"}

func huntableExecutable(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for _, d := range systemDirs {
		if strings.HasPrefix(p, d) {
			return false
		}
	}
	return true
}

// indicatorQuery builds the query matching any of the indicators.
func indicatorQuery(hashes, addrs, exes []string) string {
	list := func(vs []string) string {
		slices.Sort(vs)
		vs = slices.Compact(vs)
		q := make([]string, len(vs))
		for i, v := range vs {
			q[i] = strconv.Quote(v)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	var parts []string
	if len(hashes) > 0 {
		parts = append(parts, "file.hash.sha256 in "+list(hashes))
	}
	if len(exes) > 0 {
		parts = append(parts, "process.executable in "+list(exes))
	}
	if len(addrs) > 0 {
		l := list(addrs)
		parts = append(parts, "destination.ip in "+l, "source.ip in "+l)
	}
	return strings.Join(parts, " or ")
}

func (s *server) addIncidentHost(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		AgentID string `json:"agent_id"`
		Reason  string `json:"reason"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	id := r.PathValue("id")
	setTarget(r, id)
	inc, err := s.Incidents.AddHost(r.Context(), id, body.AgentID, caller(r).Name, body.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inc)
	return nil
}
