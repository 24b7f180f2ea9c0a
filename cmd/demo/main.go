// Demo runs Cordon end to end on one machine with the binaries in bin/:
// a collector with its store in ./demo-data, a local agent enrolled with
// it, and a drill whose findings open an incident, which it prints. It
// keeps both running until Ctrl-C; with DEMO_ONCE=1 it stops them and
// exits after printing. A second run reuses ./demo-data.
//
// Environment: DEMO_DIR (default demo-data), DEMO_LISTEN (collector UDP
// address, default 127.0.0.1:7443), DEMO_API (default 127.0.0.1:7480),
// DEMO_ONCE.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// demoCollectorConfig is the demo collector's first configuration: the
// embedded defaults, but playbooks' automatic actions (the ransomware and
// data breach playbooks isolate hosts) are only written on the incident's
// timeline, since the demo's agent watches the machine the demo runs on.
// A file already there is the user's and is left as it is.
const demoCollectorConfig = `# Written by make demo when it was missing; your changes stay.
incidents:
  # true: playbook actions are written on the incident's timeline, not
  # sent. The demo's agent watches this machine; set false to let the
  # ransomware and data breach playbooks isolate it.
  playbook_dry_run: true
`

type demo struct {
	dir, listen, api string
	env              []string
	procs            []*exec.Cmd
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run() error {
	d := &demo{
		dir:    getenv("DEMO_DIR", "demo-data"),
		listen: getenv("DEMO_LISTEN", "127.0.0.1:7443"),
		api:    getenv("DEMO_API", "127.0.0.1:7480"),
	}
	for _, b := range []string{"cordon-collector", "cordon-agent", "cordonctl"} {
		if _, err := os.Stat(filepath.Join("bin", b)); err != nil {
			return fmt.Errorf("bin/%s is missing: run `make build` (or `make demo`) from the repository root", b)
		}
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer d.stopAll()

	collectorData := filepath.Join(d.dir, "collector")
	// The demo's agent watches the machine the demo runs on: a playbook
	// must not isolate it because of what its user does meanwhile.
	collectorConfig := filepath.Join(d.dir, "collector.yml")
	if f, err := os.OpenFile(collectorConfig, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		_, err = f.WriteString(demoCollectorConfig)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing the collector's configuration %s: %w", collectorConfig, err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("writing the collector's configuration %s: %w", collectorConfig, err)
	}
	step("starting the collector (store in %s, agents on udp %s, API on http://%s, configuration in %s: playbook actions only written on incident timelines unless you changed it)", collectorData, d.listen, d.api, collectorConfig)
	if err := d.start("collector", "bin/cordon-collector", "run", "--config", collectorConfig, "--data", collectorData, "--listen", d.listen, "--api", d.api); err != nil {
		return err
	}
	token, err := waitFor(ctx, 30*time.Second, func() (string, error) {
		b, err := os.ReadFile(filepath.Join(collectorData, "admin.token"))
		return strings.TrimSpace(string(b)), err
	})
	if err != nil {
		return d.failed("collector", fmt.Errorf("waiting for the admin key: %w", err))
	}
	d.env = append(os.Environ(), "CORDON_API=http://"+d.api, "CORDON_TOKEN="+token)
	if _, err := waitFor(ctx, 30*time.Second, func() (string, error) { return d.ctl("agents") }); err != nil {
		return d.failed("collector", fmt.Errorf("waiting for the API: %w", err))
	}

	agentState := filepath.Join(d.dir, "agent")
	agentID, err := d.enroll(agentState)
	if err != nil {
		return err
	}

	if os.Getuid() != 0 {
		step("not running as root: the agent may be refused the kernel's process events and fall back to polling /proc, which can miss very short-lived processes")
	}
	step("starting the agent (state in %s)", agentState)
	if err := d.start("agent", "bin/cordon-agent", "run", "--state", agentState); err != nil {
		return err
	}
	if _, err := waitFor(ctx, 30*time.Second, func() (string, error) {
		var agents []struct {
			ID     string `json:"id"`
			Online bool   `json:"online"`
		}
		if err := d.ctlJSON(&agents, "agents", "--json"); err != nil {
			return "", err
		}
		for _, a := range agents {
			if a.ID == agentID && a.Online {
				return "online", nil
			}
		}
		return "", errors.New("agent not online yet")
	}); err != nil {
		return d.failed("agent", fmt.Errorf("waiting for the agent to connect: %w", err))
	}
	fmt.Println()
	d.show("agents")
	if out, err := exec.Command("bin/cordon-agent", "status", "--state", agentState).CombinedOutput(); err == nil {
		fmt.Printf("$ cordon-agent status\n%s", out)
	}

	started := time.Now().Add(-time.Second)
	step("running a drill on agent %s: a harmless copy of /bin/true executed from /dev/shm", agentID)
	if out, err := d.ctl("drill", agentID, "--wait"); err != nil {
		return d.failed("agent", fmt.Errorf("drill: %w", err))
	} else {
		fmt.Print(out)
	}

	step("waiting for the drill's findings to reach the collector and open an incident")
	incident, err := waitFor(ctx, 60*time.Second, func() (string, error) {
		var findings []struct {
			Drill      bool      `json:"drill"`
			IncidentID string    `json:"incident_id"`
			DetectedAt time.Time `json:"detected_at"`
		}
		if err := d.ctlJSON(&findings, "findings", "--agent", agentID, "--json"); err != nil {
			return "", err
		}
		for _, f := range findings {
			if f.Drill && f.IncidentID != "" && f.DetectedAt.After(started) {
				return f.IncidentID, nil
			}
		}
		return "", errors.New("no incident for the drill yet")
	})
	if err != nil {
		return d.failed("agent", err)
	}
	fmt.Println()
	d.show("findings", "--agent", agentID)
	fmt.Println()
	d.show("incident", "show", incident)

	fmt.Printf(`
Cordon is running. In another terminal:

  export CORDON_API=http://%s CORDON_TOKEN=$(cat %s)
  bin/cordonctl incidents
  bin/cordonctl incident show %s
  bin/cordonctl drill %s --scenario reverse-shell --wait

Logs: %s/collector.log and %s/agent.log
`, d.api, filepath.Join(collectorData, "admin.token"), incident, agentID, d.dir, d.dir)
	if os.Getenv("DEMO_ONCE") != "" {
		step("DEMO_ONCE is set: stopping")
		return nil
	}
	fmt.Println("Press Ctrl-C to stop.")
	select {
	case <-ctx.Done():
	case err := <-d.exited():
		return err
	}
	step("stopping")
	return nil
}

// enroll enrolls the demo agent unless it was enrolled by an earlier run,
// and returns its id.
func (d *demo) enroll(state string) (string, error) {
	var id struct {
		AgentID string `json:"agent_id"`
	}
	if b, err := os.ReadFile(filepath.Join(state, "agent.json")); err == nil && json.Unmarshal(b, &id) == nil && id.AgentID != "" {
		step("agent already enrolled as %s (from an earlier run)", id.AgentID)
		return id.AgentID, nil
	}
	step("creating an enrollment token and reading the CA pin")
	out, err := d.ctl("enroll-token", "create", "--ttl", "10m", "--uses", "1", "--tag", "criticality=high", "--tag", "env=demo")
	if err != nil {
		return "", fmt.Errorf("creating an enrollment token: %w", err)
	}
	token := lastLine(out)
	out, err = d.ctl("ca-pin")
	if err != nil {
		return "", fmt.Errorf("reading the CA pin: %w", err)
	}
	pin := lastLine(out)
	step("enrolling the local agent: cordon-agent enroll --collector %s --token … --ca-pin %s", d.listen, pin)
	cmd := exec.Command("bin/cordon-agent", "enroll", "--collector", d.listen, "--token", token, "--ca-pin", pin,
		"--state", state, "--tag", "criticality=high", "--tag", "env=demo")
	b, err := cmd.CombinedOutput()
	fmt.Print(string(b))
	if err != nil {
		return "", fmt.Errorf("enrolling the agent: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(state, "agent.json")); err != nil || json.Unmarshal(b, &id) != nil {
		return "", fmt.Errorf("reading the agent id after enrollment: %v", err)
	}
	return id.AgentID, nil
}

func (d *demo) start(name, bin string, args ...string) error {
	logPath := filepath.Join(d.dir, name+".log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	d.procs = append(d.procs, cmd)
	return nil
}

// exited reports the first demo process that ends on its own.
func (d *demo) exited() <-chan error {
	ch := make(chan error, len(d.procs))
	for _, p := range d.procs {
		go func() {
			err := p.Wait()
			ch <- fmt.Errorf("%s exited unexpectedly (%v); see the logs in %s", filepath.Base(p.Path), err, d.dir)
		}()
	}
	return ch
}

func (d *demo) stopAll() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		if p.Process == nil || p.ProcessState != nil {
			continue
		}
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
		}
	}
}

// failed adds the tail of a component's log to err.
func (d *demo) failed(name string, err error) error {
	b, _ := os.ReadFile(filepath.Join(d.dir, name+".log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return fmt.Errorf("%w\nlast lines of %s/%s.log:\n  %s", err, d.dir, name, strings.Join(lines, "\n  "))
}

func (d *demo) ctl(args ...string) (string, error) {
	cmd := exec.Command("bin/cordonctl", args...)
	cmd.Env = d.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("cordonctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (d *demo) ctlJSON(v any, args ...string) error {
	out, err := d.ctl(args...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

// show prints a cordonctl command and its output.
func (d *demo) show(args ...string) {
	fmt.Printf("$ cordonctl %s\n", strings.Join(args, " "))
	out, err := d.ctl(args...)
	fmt.Print(out)
	if err != nil {
		fmt.Println(err)
	}
}

func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// waitFor calls f until it succeeds or the timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, f func() (string, error)) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		v, err := f()
		if err == nil {
			return v, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("gave up after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return "", errors.New("interrupted")
		case <-time.After(250 * time.Millisecond):
		}
	}
}
