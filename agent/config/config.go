// Package config reads the agent's configuration: the YAML file
// (/etc/cordon/agent.yaml by default), then the few environment variables
// that deployment tools set, over the built-in defaults. Every refused
// value names its file (or variable), line and key.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cordon-edr/cordon/agent"
	"github.com/cordon-edr/cordon/agent/history"
	"github.com/cordon-edr/cordon/agent/sensor/fswatch"
	"github.com/cordon-edr/cordon/agent/uplink"
	"github.com/cordon-edr/cordon/agent/watchdog"
	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/detectors/sigma"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/yamlconf"
)

const (
	// DefaultPath is read when no --config is given and it exists.
	DefaultPath = "/etc/cordon/agent.yaml"
	// DefaultState is the agent's state folder: its identity, spool,
	// command journal and isolation state.
	DefaultState = "/var/lib/cordon-agent"
)

// The environment variables read over the file.
const (
	EnvCollector = "CORDON_COLLECTOR"
	EnvToken     = "CORDON_ENROLL_TOKEN"
	EnvCAPin     = "CORDON_CA_PIN"
	EnvTags      = "CORDON_TAGS"
)

// Config is the agent's configuration; every key is optional.
type Config struct {
	// State is the state folder.
	State string `yaml:"state"`
	// Collector is the collector's HOST:PORT for enrollment; when set it
	// also overrides the address stored at enrollment.
	Collector string `yaml:"collector"`
	LogLevel  string `yaml:"log_level"`
	// Enroll holds what enrollment needs besides the collector address.
	Enroll struct {
		Token string `yaml:"token"`
		// CAPin is the collector CA's pin, sha256:<hex>.
		CAPin string `yaml:"ca_pin"`
		// Tags are attached to the agent at enrollment.
		Tags map[string]string `yaml:"tags"`
	} `yaml:"enroll"`
	Uplink struct {
		// RestartWindow spreads the first reconnection after the
		// collector shut down: a random wait in [0, restart_window).
		RestartWindow time.Duration `yaml:"restart_window"`
		// IdleTimeout closes a connection that heard nothing from the
		// collector for this long; KeepAlive is how long a quiet
		// connection waits before it sends a PING.
		IdleTimeout time.Duration `yaml:"idle_timeout"`
		KeepAlive   time.Duration `yaml:"keepalive"`
	} `yaml:"uplink"`
	Sensors struct {
		Process struct {
			// Mode is "auto" (kernel events from eBPF where it loads, else
			// from the netlink process connector), "netlink" (the
			// connector and /proc, without eBPF) or
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
	// ProtectedProcesses are executables (full paths) or process names
	// that kill and suspend refuse.
	// Budget is the CPU and memory the agent allows itself before it
	// sheds work.
	Budget struct {
		// CPUPercent is a share of one core averaged over Window.
		CPUPercent float64 `yaml:"cpu_percent"`
		// MemoryMiB bounds the resident memory.
		MemoryMiB uint64        `yaml:"memory_mib"`
		Window    time.Duration `yaml:"window"`
	} `yaml:"budget"`
	ProtectedProcesses []string `yaml:"protected_processes"`
	// History is the local telemetry history that hunts read.
	History struct {
		Enabled bool          `yaml:"enabled"`
		MaxAge  time.Duration `yaml:"max_age"`
		// MaxBytes is a number of bytes or a size such as "512MiB".
		MaxBytes ByteSize `yaml:"max_bytes"`
	} `yaml:"history"`
	Detection struct {
		// NoiseWindow reports a rule once per window per process tree,
		// with a count of the repeats; 0 reports every finding.
		NoiseWindow time.Duration `yaml:"noise_window"`
		// Exceptions silence a rule on matching events.
		Exceptions []Exception `yaml:"exceptions"`
	} `yaml:"detection"`

	// Source names where the configuration came from: the file, or
	// "built-in defaults".
	Source string `yaml:"-"`

	exceptions []detectors.Exception
	isolation  agent.IsolationConfig
}

// Exception is one detection.exceptions entry.
type Exception struct {
	Rule string `yaml:"rule"`
	// Where is a Sigma selection; empty covers every event.
	Where yaml.Node `yaml:"where"`
	// Expires is an RFC 3339 time or a date; empty never expires.
	Expires string `yaml:"expires"`
	Reason  string `yaml:"reason"`
}

// Default returns the built-in configuration.
func Default() Config {
	c := Config{State: DefaultState, LogLevel: "info", Source: "built-in defaults"}
	c.Sensors.Process.Mode = "auto"
	c.Sensors.File.Enabled = true
	c.Sensors.File.HashMaxBytes = fswatch.DefaultHashMaxBytes
	c.Sensors.Network.Enabled = true
	c.Uplink.RestartWindow = uplink.DefaultRestartWindow
	c.Uplink.IdleTimeout = protocol.DefaultIdleTimeout
	c.Uplink.KeepAlive = protocol.DefaultKeepAlive
	c.Budget.CPUPercent = 100 * watchdog.DefaultCPU
	c.Budget.MemoryMiB = watchdog.DefaultRSS >> 20
	c.Budget.Window = watchdog.DefaultWindow
	c.History.Enabled = true
	c.History.MaxAge = history.DefaultMaxAge
	c.History.MaxBytes = history.DefaultMaxBytes
	return c
}

// Resolve returns the file to read: flag when given, else DefaultPath
// when it exists, else "" (the built-in defaults).
func Resolve(flag string) string { return yamlconf.Resolve(flag, DefaultPath) }

// Load reads path ("" for none) over the defaults, then the environment
// through getenv (nil for none), and checks the result.
func Load(path string, getenv func(string) string) (Config, error) {
	data, err := yamlconf.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return parse(path, data, getenv)
}

// Parse decodes the YAML data, named name in errors, over the defaults
// and checks it.
func Parse(name string, data []byte) (Config, error) { return parse(name, data, nil) }

func parse(name string, data []byte, getenv func(string) string) (Config, error) {
	c := Default()
	doc := &yamlconf.Doc{File: name}
	if name != "" {
		c.Source = name
		var err error
		if doc, err = yamlconf.Decode(name, data, &c); err != nil {
			return Config{}, err
		}
	}
	if getenv != nil {
		if err := c.applyEnv(getenv); err != nil {
			return Config{}, err
		}
	}
	if err := c.check(doc); err != nil {
		return Config{}, err
	}
	return c, nil
}

// applyEnv sets the values of the environment variables that are set.
func (c *Config) applyEnv(getenv func(string) string) error {
	if v := getenv(EnvCollector); v != "" {
		c.Collector = v
	}
	if v := getenv(EnvToken); v != "" {
		c.Enroll.Token = v
	}
	if v := getenv(EnvCAPin); v != "" {
		c.Enroll.CAPin = v
	}
	if v := getenv(EnvTags); v != "" {
		tags, err := ParseTags(v)
		if err != nil {
			return &yamlconf.Error{File: "environment", Key: EnvTags, Err: err}
		}
		if c.Enroll.Tags == nil {
			c.Enroll.Tags = map[string]string{}
		}
		for k, v := range tags {
			c.Enroll.Tags[k] = v
		}
	}
	return nil
}

// ParseTags parses "k=v,k=v".
func ParseTags(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%q: want k=v pairs separated by commas, e.g. criticality=high,site=paris", kv)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

func (c *Config) check(doc *yamlconf.Doc) error {
	if c.State == "" {
		return doc.Errorf("state", "empty; the agent needs a state folder")
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return doc.Errorf("log_level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if c.Collector != "" {
		if _, port, err := net.SplitHostPort(c.Collector); err != nil || port == "" {
			return doc.Errorf("collector", "%q: want HOST:PORT", c.Collector)
		}
	}
	if c.Enroll.CAPin != "" && !strings.HasPrefix(c.Enroll.CAPin, "sha256:") {
		return doc.Errorf("enroll.ca_pin", "%q: want sha256:<hex>, as the collector prints it", c.Enroll.CAPin)
	}
	keys := make([]string, 0, len(c.Enroll.Tags))
	for k := range c.Enroll.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.ContainsAny(k, "=,") {
			return doc.Errorf("enroll.tags."+k, "a tag name cannot hold = or ,")
		}
	}
	switch c.Sensors.Process.Mode {
	case "auto", "netlink", "poll":
	default:
		return doc.Errorf("sensors.process.mode", "%q is not auto, netlink or poll", c.Sensors.Process.Mode)
	}
	for i, p := range c.Sensors.File.Paths {
		if err := fswatch.ParsePaths([]string{p}); err != nil {
			return doc.Wrap(fmt.Sprintf("sensors.file.paths[%d]", i), err)
		}
	}
	if c.Sensors.File.HashMaxBytes < 0 {
		return doc.Errorf("sensors.file.hash_max_bytes", "%d is negative (0 turns hashing off)", c.Sensors.File.HashMaxBytes)
	}
	if w := c.Uplink.RestartWindow; w <= 0 || w > 10*time.Minute {
		return doc.Errorf("uplink.restart_window", "%s is not above 0 and at most 10m", w)
	}
	if key, err := protocol.CheckLiveness(c.Uplink.IdleTimeout, c.Uplink.KeepAlive); err != nil {
		return doc.Wrap("uplink."+key, err)
	}
	if b := c.Budget.CPUPercent; b <= 0 || b > 100 {
		return doc.Errorf("budget.cpu_percent", "%v is not above 0 and at most 100", b)
	}
	if m := c.Budget.MemoryMiB; m < 16 || m > 1<<20 {
		return doc.Errorf("budget.memory_mib", "%d is not between 16 and 1048576", m)
	}
	if w := c.Budget.Window; w < 10*time.Second || w > time.Hour {
		return doc.Errorf("budget.window", "%s is not between 10s and 1h", w)
	}
	if c.History.MaxAge <= 0 {
		return doc.Errorf("history.max_age", "%s is not positive", c.History.MaxAge)
	}
	if c.History.MaxBytes < 1<<20 {
		return doc.Errorf("history.max_bytes", "%d is below 1MiB", c.History.MaxBytes)
	}
	if c.Detection.NoiseWindow < 0 {
		return doc.Errorf("detection.noise_window", "%s is negative", c.Detection.NoiseWindow)
	}
	c.exceptions = nil
	for i, x := range c.Detection.Exceptions {
		key := fmt.Sprintf("detection.exceptions[%d]", i)
		switch {
		case x.Rule == "":
			return doc.Errorf(key+".rule", "missing")
		case x.Reason == "":
			return doc.Errorf(key+".reason", "missing; say why the rule is silenced")
		}
		ex := detectors.Exception{RuleID: x.Rule, Reason: x.Reason}
		if x.Expires != "" {
			t, err := time.Parse(time.RFC3339, x.Expires)
			if err != nil {
				t, err = time.Parse(time.DateOnly, x.Expires)
			}
			if err != nil {
				return doc.Errorf(key+".expires", "%q is not an RFC 3339 time or a date", x.Expires)
			}
			ex.Expires = t
		}
		if x.Where.Kind != 0 {
			match, err := sigma.Selection(&x.Where)
			if err != nil {
				return doc.Wrap(key+".where", err)
			}
			ex.Match = match
		}
		c.exceptions = append(c.exceptions, ex)
	}
	return c.checkIsolation(doc)
}

func (c *Config) checkIsolation(doc *yamlconf.Doc) error {
	out := agent.IsolationConfig{AllowDNS: c.Isolation.AllowDNS, AllowDHCP: c.Isolation.AllowDHCP, Probe: c.Isolation.Probe}
	for i, s := range c.Isolation.AllowCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return doc.Errorf(fmt.Sprintf("isolation.allow_cidrs[%d]", i), "%q is not a CIDR such as 10.0.0.0/8", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out.AllowCIDRs = append(out.AllowCIDRs, p)
	}
	if out.Probe != "" {
		host, port, err := net.SplitHostPort(out.Probe)
		if err == nil {
			_, err = netip.ParseAddr(host)
		}
		if n, perr := strconv.Atoi(port); err == nil && (perr != nil || n <= 0 || n > 65535) {
			err = fmt.Errorf("bad port %q", port)
		}
		if err != nil {
			return doc.Errorf("isolation.probe", "%q: want IP:PORT: %v", out.Probe, err)
		}
	}
	c.isolation = out
	return nil
}

// Exceptions returns the compiled detection exceptions.
func (c *Config) Exceptions() []detectors.Exception { return c.exceptions }

// IsolationAllowances returns the isolation section in the agent's terms.
func (c *Config) IsolationAllowances() agent.IsolationConfig { return c.isolation }

// FileHashMax is the file sensor's hash cap: 0 in the configuration turns
// hashing off, which the sensor spells as a negative cap.
func (c *Config) FileHashMax() int64 {
	if c.Sensors.File.HashMaxBytes == 0 {
		return -1
	}
	return c.Sensors.File.HashMaxBytes
}

// ByteSize is a size in bytes, written as a number or with a unit (KiB,
// MiB, GiB, KB, MB, GB).
type ByteSize int64

// UnmarshalYAML reads a number of bytes or a size with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// ParseByteSize parses "536870912" or "512MiB".
func ParseByteSize(s string) (int64, error) {
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
