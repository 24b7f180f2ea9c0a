package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	loadgenOnce sync.Once
	loadgenErr  error
)

// loadgen returns the path of cordon-loadgen, built on first use so tests
// that do not need it do not pay for it.
func loadgen(t testing.TB) string {
	t.Helper()
	loadgenOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", binDir+"/", "../cordon-loadgen").CombinedOutput()
		if err != nil {
			loadgenErr = fmt.Errorf("building cordon-loadgen: %v\n%s", err, out)
		}
	})
	if loadgenErr != nil {
		t.Fatal(loadgenErr)
	}
	return bin("cordon-loadgen")
}

// loadReport is the part of cordon-loadgen's report the tests read.
type loadReport struct {
	Enrolled          int            `json:"enrolled"`
	FindingsGenerated uint64         `json:"findings_generated"`
	FindingsAcked     uint64         `json:"findings_acked"`
	FindingsStored    uint64         `json:"findings_stored"`
	Duplicates        uint64         `json:"findings_duplicates"`
	FindingsUnacked   uint64         `json:"findings_unacked"`
	Reconnects        uint64         `json:"reconnects"`
	Errors            map[string]int `json:"errors"`
}

// loadRun is a cordon-loadgen running against a collector.
type loadRun struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error // of Wait, once done is closed
}

func startLoadgen(t *testing.T, c *collector, args ...string) *loadRun {
	t.Helper()
	cmd := exec.Command(loadgen(t), append([]string{"--collector", c.listen, "--api", "http://" + c.api}, args...)...)
	cmd.Env = append(os.Environ(), "CORDON_TOKEN="+c.token)
	r := &loadRun{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &r.stdout, &r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.err = cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait waits for the run to end and returns its report.
func (r *loadRun) wait(t *testing.T, timeout time.Duration) loadReport {
	t.Helper()
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("cordon-loadgen: %v\nstderr: %s\nstdout: %s", r.err, r.stderr.String(), r.stdout.String())
		}
	case <-time.After(timeout):
		r.cmd.Process.Kill()
		<-r.done
		t.Fatalf("cordon-loadgen still running after %s\nstderr: %s", timeout, r.stderr.String())
	}
	var rep loadReport
	if err := json.Unmarshal(r.stdout.Bytes(), &rep); err != nil {
		t.Fatalf("cordon-loadgen printed no report: %v\n%s", err, r.stdout.String())
	}
	return rep
}

// readLines returns the lines of a file (none when it does not exist).
func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// api calls the collector's REST API with the admin key.
func (c *collector) apiGet(t *testing.T, path string, v any) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+c.api+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// allFindings pages through every finding the collector lists and
// returns how many times each id is listed.
func (c *collector) allFindings(t *testing.T) map[string]int {
	t.Helper()
	seen := map[string]int{}
	cursor := ""
	for {
		var page struct {
			Items []findingJSON `json:"items"`
			Next  string        `json:"next"`
		}
		c.apiGet(t, "/api/v1/findings?limit=1000&cursor="+url.QueryEscape(cursor), &page)
		for _, f := range page.Items {
			seen[f.ID]++
		}
		if page.Next == "" {
			return seen
		}
		cursor = page.Next
	}
}

// The collector is killed with SIGKILL while agents stream findings:
// every finding it acknowledged before dying is in its store after the
// restart, the agents deliver the rest, and none is stored twice.
func TestCollectorKilledMidIngest(t *testing.T) {
	c := newCollector(t)
	acked := filepath.Join(t.TempDir(), "acked")
	const agents, perAgent = 8, 600
	run := startLoadgen(t, c, "--agents", fmt.Sprint(agents), "--rate", "200", "--batch", "25",
		"--findings", fmt.Sprint(perAgent), "--duration", "6s", "--drain", "60s", "--acked", acked)

	// Kill it once a good part of the load is acknowledged, not all.
	eventually(t, 60*time.Second, "findings acknowledged before the kill", func() error {
		if n := len(readLines(t, acked)); n < agents*perAgent/5 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
	before := readLines(t, acked)
	if len(before) >= agents*perAgent {
		t.Fatalf("all %d findings were acknowledged before the kill; the test needs the kill mid-ingest", len(before))
	}
	time.Sleep(time.Second)
	c = startCollector(t, c.data, c.listen, c.api)

	rep := run.wait(t, 90*time.Second)
	if rep.FindingsGenerated != agents*perAgent || rep.FindingsAcked != rep.FindingsGenerated || rep.FindingsUnacked != 0 {
		t.Fatalf("report %+v: want all %d findings acknowledged", rep, agents*perAgent)
	}
	if rep.Reconnects == 0 {
		t.Errorf("no agent reconnected: the collector was not killed mid-run? report %+v", rep)
	}
	stored := c.allFindings(t)
	for _, id := range before {
		if stored[id] == 0 {
			t.Errorf("finding %s was acknowledged before the kill but is not in the store", id)
		}
	}
	for id, n := range stored {
		if n > 1 {
			t.Errorf("finding %s is stored %d times", id, n)
		}
	}
	if len(stored) != agents*perAgent {
		t.Errorf("%d findings stored, want %d", len(stored), agents*perAgent)
	}
	t.Logf("%d acknowledged before SIGKILL, %d in all after restart, %d reconnects, %d resent as duplicates",
		len(before), len(stored), rep.Reconnects, rep.Duplicates)
}
