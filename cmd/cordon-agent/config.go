package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cordon-edr/cordon/agent/history"
	"github.com/cordon-edr/cordon/agent/sensor/fswatch"
	"github.com/cordon-edr/cordon/agent/uplink"
	"github.com/cordon-edr/cordon/agent/watchdog"
	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/detectors/sigma"
)

// config is the agent's YAML configuration; every key is optional.
type config struct {
	// State is the state folder.
	State string `yaml:"state"`
	// Collector overrides the collector address stored at enrollment.
	Collector string `yaml:"collector"`
	LogLevel  string `yaml:"log_level"`
	Uplink    struct {
		// RestartWindow spreads the first reconnection after the
		// collector shut down: a random wait in [0, restart_window).
		RestartWindow time.Duration `yaml:"restart_window"`
	} `yaml:"uplink"`
	Sensors struct {
		Process struct {
			// Mode is "auto" (kernel events, with argv captured by eBPF
			// where it loads), "netlink" (kernel events without eBPF) or
			// "poll".
			Mode string `yaml:"mode"`
		} `yaml:"process"`
		File struct {
			Enabled bool `yaml:"enabled"`
			// Paths are the watched paths; "/..." at the end watches
			// recursively. Empty means the built-in list.
			Paths []string `yaml:"paths"`
			// HashMaxBytes caps the size of the files hashed; 0 turns
			// hashing off.
			HashMaxBytes int64 `yaml:"hash_max_bytes"`
		} `yaml:"file"`
		Network struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"network"`
	} `yaml:"sensors"`
	// Isolation says what an isolated host may still reach besides the
	// collector.
	Isolation struct {
		AllowDNS   bool     `yaml:"allow_dns"`
		AllowDHCP  bool     `yaml:"allow_dhcp"`
		AllowCIDRs []string `yaml:"allow_cidrs"`
		// Probe is a UDP host:port outside the allowances that the
		// isolation proof must fail to reach.
		Probe string `yaml:"probe"`
	} `yaml:"isolation"`
	// Budget is the CPU and memory the agent allows itself before it
	// sheds work.
	Budget struct {
		// CPUPercent is a share of one core averaged over Window.
		CPUPercent float64 `yaml:"cpu_percent"`
		// MemoryMiB bounds the resident memory.
		MemoryMiB uint64        `yaml:"memory_mib"`
		Window    time.Duration `yaml:"window"`
	} `yaml:"budget"`
	// ProtectedProcesses are executables (full paths) or process names
	// that kill and suspend refuse.
	ProtectedProcesses []string `yaml:"protected_processes"`
	// History is the local telemetry history that hunts read.
	History struct {
		Enabled bool          `yaml:"enabled"`
		MaxAge  time.Duration `yaml:"max_age"`
		// MaxBytes is a number of bytes or a size such as "512MiB".
		MaxBytes byteSize `yaml:"max_bytes"`
	} `yaml:"history"`
	Detection struct {
		// NoiseWindow reports a rule once per window per process tree,
		// with a count of the repeats; 0 reports every finding.
		NoiseWindow time.Duration `yaml:"noise_window"`
		// Exceptions silence a rule on matching events.
		Exceptions []exceptionConfig `yaml:"exceptions"`
	} `yaml:"detection"`
}

// exceptionConfig is one detection.exceptions entry.
type exceptionConfig struct {
	Rule string `yaml:"rule"`
	// Where is a Sigma selection; empty covers every event.
	Where yaml.Node `yaml:"where"`
	// Expires is an RFC 3339 time or a date; empty never expires.
	Expires string `yaml:"expires"`
	Reason  string `yaml:"reason"`

	expires time.Time
}

func defaultConfig() config {
	c := config{State: defaultState, LogLevel: "info"}
	c.Sensors.Process.Mode = "auto"
	c.Sensors.File.Enabled = true
	c.Sensors.File.HashMaxBytes = fswatch.DefaultHashMaxBytes
	c.Sensors.Network.Enabled = true
	c.Uplink.RestartWindow = uplink.DefaultRestartWindow
	c.Budget.CPUPercent = 100 * watchdog.DefaultCPU
	c.Budget.MemoryMiB = watchdog.DefaultRSS >> 20
	c.Budget.Window = watchdog.DefaultWindow
	c.History.Enabled = true
	c.History.MaxAge = history.DefaultMaxAge
	c.History.MaxBytes = history.DefaultMaxBytes
	return c
}

// fileHashMax is the file sensor's hash cap: 0 in the configuration turns
// hashing off, which the sensor spells as a negative cap.
func (c config) fileHashMax() int64 {
	if c.Sensors.File.HashMaxBytes == 0 {
		return -1
	}
	return c.Sensors.File.HashMaxBytes
}

// loadConfig reads path over the defaults in c. Unknown keys and bad
// values are errors naming the file, line and key.
func loadConfig(path string, c *config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading configuration: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file keeps the defaults
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(b, &root)
	switch c.Sensors.Process.Mode {
	case "auto", "netlink", "poll":
	default:
		return fmt.Errorf("%s: line %d: sensors.process.mode: %q is not auto, netlink or poll", path, findLine(&root, "sensors", "process", "mode"), c.Sensors.Process.Mode)
	}
	for i, p := range c.Sensors.File.Paths {
		if err := fswatch.ParsePaths([]string{p}); err != nil {
			return fmt.Errorf("%s: line %d: sensors.file.paths[%d]: %w", path, findLine(&root, "sensors", "file", "paths", strconv.Itoa(i)), i, err)
		}
	}
	if c.Sensors.File.HashMaxBytes < 0 {
		return fmt.Errorf("%s: line %d: sensors.file.hash_max_bytes: %d is negative", path, findLine(&root, "sensors", "file", "hash_max_bytes"), c.Sensors.File.HashMaxBytes)
	}
	for i, x := range c.Detection.Exceptions {
		line := exceptionLine(&root, i)
		switch {
		case x.Rule == "":
			return fmt.Errorf("%s: line %d: detection.exceptions[%d].rule: missing", path, line, i)
		case x.Reason == "":
			return fmt.Errorf("%s: line %d: detection.exceptions[%d].reason: missing; say why the rule is silenced", path, line, i)
		}
		if x.Expires != "" {
			t, err := time.Parse(time.RFC3339, x.Expires)
			if err != nil {
				t, err = time.Parse(time.DateOnly, x.Expires)
			}
			if err != nil {
				return fmt.Errorf("%s: line %d: detection.exceptions[%d].expires: %q is not an RFC 3339 time or a date", path, line, i, x.Expires)
			}
			c.Detection.Exceptions[i].expires = t
		}
	}
	if c.Uplink.RestartWindow <= 0 || c.Uplink.RestartWindow > 10*time.Minute {
		return fmt.Errorf("%s: line %d: uplink.restart_window: %s is not above 0 and at most 10m", path, findLine(&root, "uplink", "restart_window"), c.Uplink.RestartWindow)
	}
	if b := c.Budget.CPUPercent; b <= 0 || b > 100 {
		return fmt.Errorf("%s: line %d: budget.cpu_percent: %v is not above 0 and at most 100", path, findLine(&root, "budget", "cpu_percent"), b)
	}
	if c.Budget.MemoryMiB < 16 || c.Budget.MemoryMiB > 1<<20 {
		return fmt.Errorf("%s: line %d: budget.memory_mib: %d is not between 16 and 1048576", path, findLine(&root, "budget", "memory_mib"), c.Budget.MemoryMiB)
	}
	if c.Budget.Window < 10*time.Second || c.Budget.Window > time.Hour {
		return fmt.Errorf("%s: line %d: budget.window: %s is not between 10s and 1h", path, findLine(&root, "budget", "window"), c.Budget.Window)
	}
	if c.History.MaxAge <= 0 {
		return fmt.Errorf("%s: line %d: history.max_age: %s is not positive", path, findLine(&root, "history", "max_age"), c.History.MaxAge)
	}
	if c.History.MaxBytes < 1<<20 {
		return fmt.Errorf("%s: line %d: history.max_bytes: %d is below 1MiB", path, findLine(&root, "history", "max_bytes"), c.History.MaxBytes)
	}
	if c.Detection.NoiseWindow < 0 {
		return fmt.Errorf("%s: line %d: detection.noise_window: %s is negative", path, findLine(&root, "detection", "noise_window"), c.Detection.NoiseWindow)
	}
	return checkIsolation(path, &root, c)
}

// exceptionLine returns the line of detection.exceptions[i], or 0.
func exceptionLine(root *yaml.Node, i int) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, key := range []string{"detection", "exceptions"} {
		if n == nil || n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == key {
				next = n.Content[j+1]
			}
		}
		n = next
	}
	if n == nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
		return 0
	}
	return n.Content[i].Line
}

// exceptions compiles the configured exceptions.
func (c *config) exceptions(path string) ([]detectors.Exception, error) {
	var out []detectors.Exception
	for i, x := range c.Detection.Exceptions {
		ex := detectors.Exception{RuleID: x.Rule, Expires: x.expires, Reason: x.Reason}
		if x.Where.Kind != 0 {
			match, err := sigma.Selection(&x.Where)
			if err != nil {
				return nil, fmt.Errorf("%s: detection.exceptions[%d].where: %w", path, i, err)
			}
			ex.Match = match
		}
		out = append(out, ex)
	}
	return out, nil
}

// findLine returns the line of the value at path in a document, or 0;
// a number in path indexes a sequence.
func findLine(n *yaml.Node, path ...string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, key := range path {
		if n.Kind == yaml.SequenceNode {
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(n.Content) {
				return 0
			}
			n = n.Content[i]
			continue
		}
		if n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return n.Line
}

// byteSize is a size in bytes, written as a number or with a unit
// (KiB, MiB, GiB, KB, MB, GB).
type byteSize int64

func (b *byteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = byteSize(v)
	return nil
}

func parseByteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 536870912 or 512MiB", s)
	}
	return n * mult, nil
}
