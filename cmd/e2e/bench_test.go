package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fleetReport is the part of cordon-loadgen's report the fleet benchmark
// publishes.
type fleetReport struct {
	Enrolled          int     `json:"enrolled"`
	ConnectedPeak     int     `json:"connected_peak"`
	ConnectedEver     int     `json:"agents_connected_at_least_once"`
	EnrollSeconds     float64 `json:"enroll_seconds"`
	FindingsAcked     uint64  `json:"findings_acked"`
	FindingsUnacked   uint64  `json:"findings_unacked"`
	CollectorRSSBytes int64   `json:"collector_rss_bytes"`
	AckLatency        struct {
		P50, P99 float64
	} `json:"ack_latency_ms"`
	CommandLatency struct {
		Count    int
		P50, P99 float64
	} `json:"command_latency_ms"`
	IncidentLatency struct {
		Count    int
		P50, P99 float64
	} `json:"incident_latency_ms"`
	Errors map[string]int `json:"errors"`
}

// fleetAgents is how many agents the fleet benchmark connects: what this
// two-core machine enrolls and holds in well under a minute.
const fleetAgents = 1000

// BenchmarkFleet connects fleetAgents simulated agents (real enrollment,
// certificates, QUIC) to a real collector, heartbeating every 30 s and
// sending a trickle of findings, and measures with all of them connected:
// the collector's peak resident memory, finding sent → acknowledged,
// finding sent → its incident visible in the API, and containment
// command requested → result visible in the API. One run per count.
func BenchmarkFleet(b *testing.B) {
	lg := loadgen(b)
	for range b.N {
		col, listen, api, token := startBenchCollector(b)
		cmd := exec.Command(lg, "--collector", listen, "--api", "http://"+api,
			"--agents", fmt.Sprint(fleetAgents), "--heartbeat", "30s", "--rate", "0.1", "--batch", "10",
			"--duration", "20s", "--drain", "30s", "--commands", "20", "--incidents", "20",
			"--collector-pid", fmt.Sprint(col.Process.Pid))
		cmd.Env = append(os.Environ(), "CORDON_TOKEN="+token)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		runErr := cmd.Run()
		col.stop()
		if runErr != nil {
			b.Fatalf("cordon-loadgen: %v\n%s\n%s", runErr, stderr.String(), stdout.String())
		}
		var rep fleetReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			b.Fatalf("cordon-loadgen report: %v\n%s", err, stdout.String())
		}
		if rep.ConnectedEver < fleetAgents || rep.FindingsUnacked > 0 || rep.CommandLatency.Count == 0 {
			b.Fatalf("report %s: want all %d agents connected and every finding acknowledged", stdout.String(), fleetAgents)
		}
		b.ReportMetric(float64(rep.ConnectedPeak), "agents-peak")
		b.ReportMetric(float64(len(rep.Errors)), "error-kinds")
		b.ReportMetric(float64(rep.CollectorRSSBytes)/(1<<20), "collector-RSS-MiB")
		b.ReportMetric(rep.AckLatency.P50, "ack-p50-ms")
		b.ReportMetric(rep.AckLatency.P99, "ack-p99-ms")
		b.ReportMetric(rep.IncidentLatency.P50, "incident-p50-ms")
		b.ReportMetric(rep.IncidentLatency.P99, "incident-p99-ms")
		b.ReportMetric(rep.CommandLatency.P50, "command-p50-ms")
		b.ReportMetric(rep.CommandLatency.P99, "command-p99-ms")
	}
}

// benchCollector is a cordon-collector a benchmark started.
type benchCollector struct {
	*exec.Cmd
	logf *os.File
}

// stop ends the collector with SIGTERM and waits for it.
func (c *benchCollector) stop() {
	c.Process.Signal(syscall.SIGTERM)
	c.Wait()
	c.logf.Close()
}

// startBenchCollector starts a real collector on free loopback ports
// with its store in a temporary folder, and returns it, its agent and
// API addresses and its admin API key once it serves.
func startBenchCollector(b *testing.B) (col *benchCollector, listen, api, token string) {
	b.Helper()
	dir := b.TempDir()
	listen, api = fmt.Sprintf("127.0.0.1:%d", freePortB(b, "udp")), fmt.Sprintf("127.0.0.1:%d", freePortB(b, "tcp"))
	cmd := exec.Command(bin("cordon-collector"), "run", "--data", dir, "--listen", listen, "--api", api)
	logf, err := os.Create(filepath.Join(dir, "collector.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	col = &benchCollector{Cmd: cmd, logf: logf}
	for deadline := time.Now().Add(30 * time.Second); token == ""; {
		if t, err := os.ReadFile(filepath.Join(dir, "admin.token")); err == nil {
			token = strings.TrimSpace(string(t))
		} else if time.Now().After(deadline) {
			col.stop()
			b.Fatal("the collector wrote no admin key")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the API listens right after
	return col, listen, api, token
}

func freePortB(b *testing.B, network string) int {
	b.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
