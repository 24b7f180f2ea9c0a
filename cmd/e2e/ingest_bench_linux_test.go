package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// ingestReport is the part of cordon-loadgen's report the ingest
// benchmark checks and publishes.
type ingestReport struct {
	Generated  uint64  `json:"findings_generated"`
	Acked      uint64  `json:"findings_acked"`
	Stored     uint64  `json:"findings_stored"`
	Duplicates uint64  `json:"findings_duplicates"`
	Unacked    uint64  `json:"findings_unacked"`
	PerSecond  float64 `json:"findings_acked_per_second"`
	AckLatency struct {
		P50, P99 float64
	} `json:"ack_latency_ms"`
}

// BenchmarkCollectorIngest measures ingest through the whole collector:
// 64 simulated agents (real enrollment, certificates and QUIC, on this
// same machine) send findings in batches of up to 100 faster than the
// collector takes them, for 10 s, then drain what they queued. It
// reports the findings acknowledged (stored durably) per second, the
// collector's CPU per finding until then, and how long the incident
// engine then takes to correlate them all (its backlog metric back to
// 0), with the collector's CPU per finding including that. Every
// finding must be stored exactly once. One run per count.
func BenchmarkCollectorIngest(b *testing.B) {
	lg := loadgen(b)
	for range b.N {
		col, listen, api, token := startBenchCollector(b)
		cmd := exec.Command(lg, "--collector", listen, "--api", "http://"+api,
			"--agents", "64", "--rate", "1000", "--batch", "100", "--heartbeat", "30s",
			"--duration", "10s", "--drain", "120s")
		cmd.Env = append(os.Environ(), "CORDON_TOKEN="+token)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		runErr := cmd.Run()
		ingestCPU, _, cpuErr := procUsage(col.Process.Pid)
		drainStart := time.Now()
		backlog, drainErr := waitBacklog(api, 10*time.Minute)
		drain := time.Since(drainStart)
		totalCPU, _, cpuErr2 := procUsage(col.Process.Pid)
		col.stop()
		if runErr != nil {
			b.Fatalf("cordon-loadgen: %v\n%s\n%s", runErr, stderr.String(), stdout.String())
		}
		if cpuErr != nil || cpuErr2 != nil {
			b.Fatalf("reading the collector's CPU time: %v %v", cpuErr, cpuErr2)
		}
		if drainErr != nil || backlog != 0 {
			b.Fatalf("incident engine backlog %d after %s: %v", backlog, drain.Round(time.Second), drainErr)
		}
		var rep ingestReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			b.Fatalf("cordon-loadgen report: %v\n%s", err, stdout.String())
		}
		if rep.Generated == 0 || rep.Acked != rep.Generated || rep.Stored != rep.Generated || rep.Duplicates != 0 || rep.Unacked != 0 {
			b.Fatalf("report %s: want every finding generated acknowledged and stored once", stdout.String())
		}
		n := float64(rep.Stored)
		b.ReportMetric(rep.PerSecond, "findings/s")
		b.ReportMetric(float64(ingestCPU.Microseconds())/n, "ingest-cpu-µs/finding")
		b.ReportMetric(drain.Seconds(), "engine-drain-s")
		b.ReportMetric(float64(totalCPU.Microseconds())/n, "total-cpu-µs/finding")
		b.ReportMetric(rep.AckLatency.P50, "ack-p50-ms")
		b.ReportMetric(rep.AckLatency.P99, "ack-p99-ms")
	}
}

// waitBacklog polls the collector's cordon_incident_engine_backlog until
// it is 0 or timeout passes, and returns the last value read.
func waitBacklog(api string, timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	for {
		var v uint64
		m, err := readMetrics(api)
		if err == nil {
			n, ok := m["cordon_incident_engine_backlog"]
			if !ok {
				err = fmt.Errorf("http://%s/metrics: no cordon_incident_engine_backlog", api)
			}
			v = uint64(n)
		}
		if err == nil && v == 0 {
			return 0, nil
		}
		if time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}
