package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/ecs"
	"github.com/cordon-edr/cordon/protocol/query"
)

// The marker every tenth simulated agent ran once: what --hunt-query
// finds by default.
const (
	markerExecutable = "/tmp/.cache/loadgen-miner"
	defaultHuntQuery = `process.executable == "` + markerExecutable + `"`
	// emptyHuntQuery matches no synthetic event: the baseline hunt.
	emptyHuntQuery = `process.name == "no-such-process-in-the-fleet"`
)

// history builds an agent's synthetic event history: n events over the
// last hour, mixing process starts, file writes and connections, with
// the marker process in every tenth agent.
func history(idx, n int) []ecs.Event {
	now := time.Now()
	evs := make([]ecs.Event, n)
	for i := range evs {
		at := now.Add(-time.Hour + time.Duration(i)*time.Hour/time.Duration(n))
		pid := 1000 + i
		switch i % 3 {
		case 0:
			exe := []string{"/usr/bin/bash", "/usr/bin/curl", "/usr/sbin/sshd", "/usr/bin/python3"}[i%4]
			evs[i] = ecs.Event{Timestamp: at, Event: ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart},
				Process: &ecs.Process{PID: pid, Executable: exe, Name: exe[len("/usr/bin/"):], CommandLine: fmt.Sprintf("%s --run %d", exe, i),
					User: ecs.User{ID: "1000", Name: "app"}}}
		case 1:
			evs[i] = ecs.Event{Timestamp: at, Event: ecs.Meta{Category: ecs.CategoryFile, Type: ecs.TypeCreation},
				File:    &ecs.File{Path: fmt.Sprintf("/var/lib/app/cache/%d.tmp", i), Name: fmt.Sprintf("%d.tmp", i), Directory: "/var/lib/app/cache"},
				Process: &ecs.Process{PID: pid, Executable: "/usr/bin/python3", Name: "python3"}}
		default:
			evs[i] = ecs.Event{Timestamp: at, Event: ecs.Meta{Category: ecs.CategoryNetwork, Type: ecs.TypeConnection},
				Destination: &ecs.Endpoint{IP: fmt.Sprintf("198.51.100.%d", 1+i%250), Port: 443},
				Network:     &ecs.Network{Transport: "tcp", Direction: ecs.DirectionEgress},
				Process:     &ecs.Process{PID: pid, Executable: "/usr/bin/curl", Name: "curl"}}
		}
	}
	if idx%10 == 0 && n > 0 {
		evs[n/2] = ecs.Event{Timestamp: evs[n/2].Timestamp, Event: ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart},
			Process: &ecs.Process{PID: 4242, Executable: markerExecutable, Name: "loadgen-miner", CommandLine: markerExecutable + " --pool 203.0.113.9:3333",
				User: ecs.User{ID: "1000", Name: "app"}}}
	}
	return evs
}

// answerHunt answers a hunt from the agent's synthetic history, with the
// same query language and budgets as the agent's hunter.
func (a *simAgent) answerHunt(ctx context.Context, req *protocol.HuntRequest) *protocol.HuntResult {
	res := &protocol.HuntResult{Id: req.GetId()}
	finish := func(status, reason string) *protocol.HuntResult {
		res.Status, res.Reason, res.FinishedUnixNano = status, reason, time.Now().UnixNano()
		return res
	}
	q, err := query.Parse(req.GetQuery())
	if err != nil {
		return finish("failed", err.Error())
	}
	a.mu.Lock()
	if a.history == nil {
		a.history = history(a.idx, a.f.cfg.History)
	}
	evs := a.history
	a.mu.Unlock()
	since := time.Unix(0, req.GetSinceUnixNano())
	limit := int(req.GetMaxMatches())
	if limit <= 0 {
		limit = 1000
	}
	for i := range evs {
		if ctx.Err() != nil {
			return finish("partial", "the agent stopped while answering")
		}
		if evs[i].Timestamp.Before(since) {
			continue
		}
		res.Scanned++
		if !q.Match(&evs[i]) {
			continue
		}
		if len(res.Matches) >= limit {
			return finish("partial", fmt.Sprintf("result-size budget reached: %d matches", limit))
		}
		b, err := json.Marshal(&evs[i])
		if err != nil {
			return finish("failed", "encoding a match: "+err.Error())
		}
		res.Matches = append(res.Matches, &protocol.HuntMatch{TimeUnixNano: evs[i].Timestamp.UnixNano(), Source: "history", EventJson: b})
	}
	return finish("answered", "")
}

// HuntReport is what one hunt over the fleet measured, from the
// collector's times: each agent's answer latency is its answered_at less
// the hunt's created_at.
type HuntReport struct {
	ID       string      `json:"id"`
	Query    string      `json:"query"`
	Status   string      `json:"status"`
	Agents   int         `json:"agents"`
	Answered int         `json:"answered"`
	Partial  int         `json:"partial"`
	Failed   int         `json:"failed"`
	Pending  int         `json:"pending"`
	Matched  int         `json:"agents_matched"`
	Matches  int         `json:"matches"`
	Latency  Percentiles `json:"answer_latency_ms"`
	// CompleteMS is the time from the hunt's creation to the last answer.
	CompleteMS float64 `json:"complete_ms"`
	// WallMS is the time from sending the request to seeing the hunt
	// done in the API (includes the polling interval).
	WallMS float64 `json:"wall_ms"`
}

type huntJSON struct {
	ID        string    `json:"id"`
	Query     string    `json:"query"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	Counts    struct {
		Agents, Pending, Answered, Partial, Failed, Expired, Matched, Matches int
	} `json:"counts"`
	Agents []struct {
		AgentID    string            `json:"agent_id"`
		Status     string            `json:"status"`
		Matches    []json.RawMessage `json:"matches"`
		AnsweredAt time.Time         `json:"answered_at"`
	} `json:"agents"`
}

// runHunt creates a hunt on every agent through the API and waits until
// no agent is pending.
func (f *fleet) runHunt(ctx context.Context, api *apiClient, q string) (*HuntReport, error) {
	start := time.Now()
	var h huntJSON
	if err := api.do(ctx, "POST", "/api/v1/hunts", map[string]any{"query": q, "agents": "all", "since": "24h", "ttl": "1h"}, &h); err != nil {
		return nil, fmt.Errorf("creating a hunt: %w", err)
	}
	for h.Status == "running" {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for hunt %s: %w", h.ID, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if err := api.do(ctx, "GET", "/api/v1/hunts/"+url.PathEscape(h.ID), nil, &h); err != nil {
			return nil, fmt.Errorf("reading hunt %s: %w", h.ID, err)
		}
	}
	rep := &HuntReport{ID: h.ID, Query: h.Query, Status: h.Status, WallMS: float64(time.Since(start).Microseconds()) / 1000,
		Agents: h.Counts.Agents, Answered: h.Counts.Answered, Partial: h.Counts.Partial, Failed: h.Counts.Failed,
		Pending: h.Counts.Pending, Matched: h.Counts.Matched, Matches: h.Counts.Matches}
	var lat []time.Duration
	var last time.Duration
	for _, a := range h.Agents {
		if a.AnsweredAt.IsZero() {
			continue
		}
		d := a.AnsweredAt.Sub(h.CreatedAt)
		lat = append(lat, d)
		last = max(last, d)
	}
	rep.Latency = percentilesOf(lat)
	rep.CompleteMS = float64(last.Microseconds()) / 1000
	return rep, nil
}

// driveHunts waits for the whole fleet to be connected, then runs the
// baseline hunt (a query no event matches) and the measured one.
func (f *fleet) driveHunts(ctx context.Context, api *apiClient, rep *Report) {
	for f.connected.Load() < int64(len(f.agentsByIdx)) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Histories are built before the first hunt, so that it does not pay
	// for them and the baseline is comparable.
	for _, a := range f.agentsByIdx {
		a.mu.Lock()
		if a.history == nil {
			a.history = history(a.idx, f.cfg.History)
		}
		a.mu.Unlock()
	}
	for _, run := range []struct {
		q   string
		out **HuntReport
	}{{emptyHuntQuery, &rep.HuntEmpty}, {f.cfg.HuntQuery, &rep.Hunt}} {
		hr, err := f.runHunt(ctx, api, run.q)
		if err != nil {
			f.fail("hunt", err)
			return
		}
		*run.out = hr
	}
}
