package e2e

import (
	"encoding/json"
	"testing"
	"time"
)

// TestLoadgenHunt runs cordon-loadgen's hunt mode against a real
// collector: twenty simulated agents (real enrollment, certificates,
// QUIC) answer a hunt from their synthetic histories through the
// collector's hunt path, and every one of them answers; the marker is in
// every tenth agent's history, so two match.
func TestLoadgenHunt(t *testing.T) {
	c := newCollector(t)
	r := startLoadgen(t, c, "--agents", "20", "--rate", "0", "--duration", "2s", "--drain", "2m", "--hunt", "--history", "200")
	r.wait(t, 3*time.Minute)
	var rep struct {
		HuntsAnswered uint64 `json:"hunt_answers_sent"`
		Baseline      *struct {
			Status   string `json:"status"`
			Agents   int    `json:"agents"`
			Answered int    `json:"answered"`
			Matches  int    `json:"matches"`
		} `json:"hunt_baseline"`
		Hunt *struct {
			Status   string `json:"status"`
			Agents   int    `json:"agents"`
			Answered int    `json:"answered"`
			Matched  int    `json:"agents_matched"`
			Matches  int    `json:"matches"`
			Latency  struct {
				Count int `json:"count"`
			} `json:"answer_latency_ms"`
		} `json:"hunt"`
	}
	if err := json.Unmarshal(r.stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, r.stdout.String())
	}
	if rep.Baseline == nil || rep.Hunt == nil {
		t.Fatalf("no hunt in the report:\n%s", r.stdout.String())
	}
	if b := rep.Baseline; b.Status != "done" || b.Agents != 20 || b.Answered != 20 || b.Matches != 0 {
		t.Errorf("baseline hunt: %+v, want done, answered by all 20 agents, no matches", *b)
	}
	if h := rep.Hunt; h.Status != "done" || h.Agents != 20 || h.Answered != 20 || h.Latency.Count != 20 || h.Matched != 2 || h.Matches != 2 {
		t.Errorf("hunt: %+v, want done, answered by all 20 agents, the marker on 2 of them", *h)
	}
	if rep.HuntsAnswered < 40 {
		t.Errorf("the agents sent %d hunt answers, want at least 40", rep.HuntsAnswered)
	}
}
