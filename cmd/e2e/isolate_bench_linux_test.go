package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkIsolate measures, on the namespace lab, the time from the
// isolate request reaching the collector to the agent's proven result
// being stored there (the command's finished_at minus its created_at),
// and the same for release. The baseline is a restore of an unknown
// quarantine id: a command that makes the same trip and fails at once on
// the agent, so the ratio is the cost of isolating and proving it.
//
//	go test -run '^$' -bench Isolate -benchtime 100x ./cmd/e2e/
func BenchmarkIsolate(b *testing.B) {
	l := newNetnsLab(b)
	c := startCollector(b, b.TempDir(),
		fmt.Sprintf("%s:%d", l.hostIP, freePort(b, "udp")),
		fmt.Sprintf("127.0.0.1:%d", freePort(b, "tcp")))
	_, id, config := c.enrollIn(b, l.agent)
	startIn(b, l.agent, "cordon-agent", "run", "--config", config)
	c.agentOnline(b, id)

	run := func(action string, args map[string]any) time.Duration {
		cmdID := c.post(b, "/api/v1/commands", map[string]any{"agent_id": id, "action": action, "args": args, "reason": "benchmark"})
		var cmd struct {
			Status     string    `json:"status"`
			Result     string    `json:"result"`
			CreatedAt  time.Time `json:"created_at"`
			FinishedAt time.Time `json:"finished_at"`
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if err := c.get(b, "/api/v1/commands/"+cmdID, &cmd); err != nil {
				b.Fatal(err)
			}
			if cmd.Status == "succeeded" || cmd.Status == "failed" || cmd.Status == "expired" {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s still %s after 30s", action, cmd.Status)
			}
			time.Sleep(2 * time.Millisecond)
		}
		if want := action != "restore"; (cmd.Status == "succeeded") != want {
			b.Fatalf("%s: %s: %s", action, cmd.Status, cmd.Result)
		}
		return cmd.FinishedAt.Sub(cmd.CreatedAt)
	}
	var iso, rel, base []time.Duration
	b.ResetTimer()
	for b.Loop() {
		base = append(base, run("restore", map[string]any{"id": "none"}))
		iso = append(iso, run("isolate", nil))
		rel = append(rel, run("release", nil))
	}
	b.StopTimer()
	report := func(name string, d []time.Duration) {
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(d[(len(d)*99+99)/100-1].Microseconds())/1000, name+"-p99-ms")
	}
	p50 := func(d []time.Duration) float64 { return float64(d[len(d)/2]) }
	report("isolate", iso)
	report("release", rel)
	report("baseline", base)
	b.ReportMetric(p50(iso)/p50(base), "isolate/baseline")
}
