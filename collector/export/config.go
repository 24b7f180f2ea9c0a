package export

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cordon-edr/cordon/collector/ingest"
)

// Sink types.
const (
	TypeWebhook   = "webhook"
	TypeSyslog    = "syslog"
	TypeFile      = "file"
	TypeSplunkHEC = "splunk_hec"
	TypeTheHive   = "thehive"
)

// Formats of an event body.
const (
	FormatOCSF = "ocsf"
	FormatECS  = "ecs"
	FormatCEF  = "cef"
)

// SinkConfig is one entry of the collector configuration's exports list.
// Every field but name and type is optional where its sink does not need
// it; Validate fills in the defaults.
type SinkConfig struct {
	Name string `yaml:"name" json:"name"`
	Type string `yaml:"type" json:"type"`

	// What flows.
	Events        []string `yaml:"events" json:"events"`
	MinPriority   string   `yaml:"min_priority" json:"min_priority"`
	MinSeverity   string   `yaml:"min_severity" json:"min_severity"`
	IncludeDrills bool     `yaml:"include_drills" json:"include_drills"`
	Format        string   `yaml:"format" json:"format"`

	// Delivery.
	MaxAttempts  int           `yaml:"max_attempts" json:"max_attempts"`
	RetryInitial time.Duration `yaml:"retry_initial" json:"retry_initial"`
	RetryMax     time.Duration `yaml:"retry_max" json:"retry_max"`
	Timeout      time.Duration `yaml:"timeout" json:"timeout"`

	// webhook, splunk_hec, thehive.
	URL string `yaml:"url" json:"url,omitempty"`
	// webhook: the HMAC-SHA256 key of X-Cordon-Signature.
	Secret string `yaml:"secret" json:"-"`
	// splunk_hec: the HEC token; thehive: the API key.
	Token string `yaml:"token" json:"-"`
	// splunk_hec: optional index, source and sourcetype of the events.
	Index      string `yaml:"index" json:"index,omitempty"`
	Source     string `yaml:"source" json:"source,omitempty"`
	Sourcetype string `yaml:"sourcetype" json:"sourcetype,omitempty"`

	// syslog.
	Address string `yaml:"address" json:"address,omitempty"`
	TLS     bool   `yaml:"tls" json:"tls,omitempty"`
	// CAFile is a PEM bundle of the CAs trusted for https and syslog TLS
	// receivers; the system pool when empty.
	CAFile     string `yaml:"ca_file" json:"ca_file,omitempty"`
	ServerName string `yaml:"server_name" json:"server_name,omitempty"`
	// Facility is the syslog facility number, 1 to 23; 13 (log audit)
	// when unset.
	Facility int `yaml:"facility" json:"facility,omitempty"`

	// file.
	Path     string `yaml:"path" json:"path,omitempty"`
	MaxBytes int64  `yaml:"max_bytes" json:"max_bytes,omitempty"`
	MaxFiles int    `yaml:"max_files" json:"max_files,omitempty"`
}

// Defaults of SinkConfig.
const (
	DefaultMaxAttempts  = 20
	DefaultRetryInitial = time.Second
	DefaultRetryMax     = 5 * time.Minute
	DefaultTimeout      = 10 * time.Second
	DefaultMaxBytes     = 100 << 20
	DefaultMaxFiles     = 5
	DefaultFacility     = 13
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ConfigError is a bad value in one sink's configuration.
type ConfigError struct {
	// Index is the sink's position in the list, Field its key.
	Index int
	Field string
	Msg   string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("exports[%d].%s: %s", e.Index, e.Field, e.Msg)
}

// Validate checks sinks and fills in their defaults. The error is a
// *ConfigError naming the sink and the key.
func Validate(sinks []SinkConfig) error {
	seen := map[string]bool{}
	for i := range sinks {
		if err := sinks[i].validate(i); err != nil {
			return err
		}
		if seen[sinks[i].Name] {
			return &ConfigError{i, "name", fmt.Sprintf("%q names two sinks", sinks[i].Name)}
		}
		seen[sinks[i].Name] = true
	}
	return nil
}

func (c *SinkConfig) validate(i int) error {
	bad := func(field, f string, a ...any) error {
		return &ConfigError{i, field, fmt.Sprintf(f, a...)}
	}
	if !nameRE.MatchString(c.Name) {
		return bad("name", "%q: want 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit", c.Name)
	}
	if len(c.Events) == 0 {
		c.Events = []string{KindIncidentOpened, KindIncidentUpdated, KindIncidentClosed}
		if c.Type == TypeTheHive {
			c.Events = []string{KindIncidentOpened}
		}
	}
	for _, k := range c.Events {
		if !slices.Contains(Kinds, k) {
			return bad("events", "%q: want %s", k, strings.Join(Kinds, ", "))
		}
	}
	if c.MinPriority == "" {
		c.MinPriority = "P5"
	}
	if _, ok := priorityRank(c.MinPriority); !ok {
		return bad("min_priority", "%q: want P1 to P5", c.MinPriority)
	}
	if c.MinSeverity == "" {
		c.MinSeverity = ingest.SeverityLow
	}
	if !ingest.KnownSeverity(c.MinSeverity) {
		return bad("min_severity", "%q: want low, medium, high or critical", c.MinSeverity)
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxAttempts < 1 {
		return bad("max_attempts", "%d: want at least 1", c.MaxAttempts)
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = DefaultRetryInitial
	}
	if c.RetryMax == 0 {
		c.RetryMax = max(DefaultRetryMax, c.RetryInitial)
	}
	if c.RetryInitial < 0 || c.RetryMax < c.RetryInitial {
		return bad("retry_max", "%s is below retry_initial %s", c.RetryMax, c.RetryInitial)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < 0 {
		return bad("timeout", "negative")
	}
	httpURL := func() error {
		if c.URL == "" {
			return bad("url", "required for a %s sink", c.Type)
		}
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("url", "%q: want an http:// or https:// URL", c.URL)
		}
		return nil
	}
	switch c.Type {
	case TypeWebhook:
		if err := httpURL(); err != nil {
			return err
		}
		if c.Secret == "" {
			return bad("secret", "required for a webhook sink: receivers verify X-Cordon-Signature with it")
		}
	case TypeSplunkHEC, TypeTheHive:
		if err := httpURL(); err != nil {
			return err
		}
		if c.Token == "" {
			return bad("token", "required for a %s sink", c.Type)
		}
		if c.Type == TypeTheHive {
			for _, k := range c.Events {
				if k != KindIncidentOpened && k != KindFinding {
					return bad("events", "%q: a thehive sink creates one alert per incident or finding; want incident.opened or finding", k)
				}
			}
			if c.Format != "" {
				return bad("format", "a thehive sink sends TheHive alerts; leave format out")
			}
		}
	case TypeSyslog:
		if c.Address == "" {
			return bad("address", "required for a syslog sink (host:port)")
		}
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			return bad("address", "%q: %v", c.Address, err)
		}
		if c.Format == "" {
			c.Format = FormatCEF
		}
		if c.Format == "json" {
			c.Format = FormatOCSF
		}
		if c.Facility == 0 {
			c.Facility = DefaultFacility
		}
		if c.Facility < 1 || c.Facility > 23 {
			return bad("facility", "%d: want 1 to 23", c.Facility)
		}
	case TypeFile:
		if c.Path == "" {
			return bad("path", "required for a file sink")
		}
		if c.MaxBytes == 0 {
			c.MaxBytes = DefaultMaxBytes
		}
		if c.MaxBytes < 1024 {
			return bad("max_bytes", "%d: want at least 1024", c.MaxBytes)
		}
		if c.MaxFiles == 0 {
			c.MaxFiles = DefaultMaxFiles
		}
		if c.MaxFiles < 1 {
			return bad("max_files", "%d: want at least 1", c.MaxFiles)
		}
	case "":
		return bad("type", "required: webhook, syslog, file, splunk_hec or thehive")
	default:
		return bad("type", "%q: want webhook, syslog, file, splunk_hec or thehive", c.Type)
	}
	if c.Type != TypeTheHive {
		if c.Format == "" {
			c.Format = FormatOCSF
		}
		switch c.Format {
		case FormatOCSF, FormatECS:
		case FormatCEF:
			if c.Type != TypeSyslog {
				return bad("format", "cef is for syslog sinks; want ocsf or ecs")
			}
		default:
			return bad("format", "%q: want ocsf or ecs (or cef, json for syslog)", c.Format)
		}
	}
	return nil
}

// priorityRank returns 1 for P1 to 5 for P5.
func priorityRank(p string) (int, bool) {
	if len(p) == 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '5' {
		return int(p[1] - '0'), true
	}
	return 0, false
}

func severityRank(s string) int {
	switch s {
	case ingest.SeverityLow:
		return 1
	case ingest.SeverityMedium:
		return 2
	case ingest.SeverityHigh:
		return 3
	case ingest.SeverityCritical:
		return 4
	}
	return 0
}

// wants reports whether the sink takes ev.
func (c *SinkConfig) wants(ev *Event) bool {
	if !slices.Contains(c.Events, ev.Kind) {
		return false
	}
	if ev.drill() && !c.IncludeDrills {
		return false
	}
	if ev.Kind == KindFinding {
		return ev.Finding != nil && severityRank(ev.Finding.Severity) >= severityRank(c.MinSeverity)
	}
	if isCommand(ev.Kind) {
		return ev.Command != nil
	}
	if ev.Incident == nil {
		return false
	}
	have, ok := priorityRank(ev.Incident.Priority)
	want, _ := priorityRank(c.MinPriority)
	return ok && have <= want
}

// target is where the sink sends, without credentials.
func (c *SinkConfig) target() string {
	switch c.Type {
	case TypeSyslog:
		if c.TLS {
			return "tls://" + c.Address
		}
		return "tcp://" + c.Address
	case TypeFile:
		return c.Path
	}
	return redact(c.URL)
}
