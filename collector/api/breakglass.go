package api

import (
	"fmt"
	"maps"
	"net/http"

	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

// getBreakGlass shows an agent's break-glass code to an admin: the code
// that lifts the agent's isolation locally when the collector cannot.
func (s *server) getBreakGlass(w http.ResponseWriter, r *http.Request) error {
	a, err := s.Agents.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if s.BreakGlass == nil {
		return store.Missing("id", "this collector issues no break-glass codes")
	}
	code, err := s.BreakGlass(a.ID)
	if err != nil {
		return err
	}
	s.log.Warn("break-glass code read through the API", "agent", a.ID, "by", caller(r).Name)
	writeJSON(w, http.StatusOK, map[string]string{"agent_id": a.ID, "code": code})
	return nil
}

// addBreakGlass adds the hash of the agent's break-glass code to an
// isolate request; the agent keeps it to check a local release.
func (s *server) addBreakGlass(req *command.Request) error {
	code, err := s.BreakGlass(req.AgentID)
	if err != nil {
		return fmt.Errorf("isolate: %w", err)
	}
	req.Args = maps.Clone(req.Args)
	if req.Args == nil {
		req.Args = map[string]string{}
	}
	req.Args[protocol.ArgBreakGlassSHA256] = protocol.BreakGlassHash(code)
	return nil
}
