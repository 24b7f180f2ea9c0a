package ioc

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Indicator types.
const (
	TypeSHA256   = "sha256"   // file.hash.sha256
	TypeIP       = "ip"       // destination.ip or source.ip
	TypeCIDR     = "cidr"     // destination.ip or source.ip within the prefix
	TypePath     = "path"     // file.path or process.executable
	TypeFilename = "filename" // file.name or process.name
)

// Types lists the indicator types, in the order the documentation gives.
var Types = []string{TypeSHA256, TypeIP, TypeCIDR, TypePath, TypeFilename}

// Limits on a set, so that it fits in one frame to the agents.
const (
	MaxBytes      = 2 << 20
	MaxIndicators = 20000
	MaxNote       = 256
	// maxProblems is how many problems an Error lists at most.
	maxProblems = 20
)

// DefaultSeverity is the severity of an indicator that gives none.
const DefaultSeverity = "medium"

// Indicator is one normalized indicator.
type Indicator struct {
	Type     string `json:"type"`
	Value    string `json:"value"`
	Severity string `json:"severity"`
	Note     string `json:"note,omitempty"`
}

// Key is what tells two indicators apart: type and value.
func (i Indicator) Key() string { return i.Type + ":" + i.Value }

// Problem is one reason a set was refused: a CSV line or a STIX object.
type Problem struct {
	Line   int    `json:"line,omitempty"`
	Object string `json:"object,omitempty"`
	Reason string `json:"reason"`
}

func (p Problem) String() string {
	switch {
	case p.Line > 0:
		return fmt.Sprintf("line %d: %s", p.Line, p.Reason)
	case p.Object != "":
		return fmt.Sprintf("%s: %s", p.Object, p.Reason)
	}
	return p.Reason
}

// Error is a refused set, with every problem found (up to 20).
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "indicator set refused: " + strings.Join(parts, "; ")
}

func (e *Error) add(p Problem) bool {
	e.Problems = append(e.Problems, p)
	return len(e.Problems) < maxProblems
}

func (e *Error) orNil() error {
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}

// Parse reads a set in either format: a STIX 2.1 bundle when the content
// starts with "{", CSV otherwise. It returns the normalized indicators in
// the order given, or an *Error.
func Parse(content []byte) ([]Indicator, error) {
	trimmed := bytes.TrimLeft(content, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return ParseSTIX(content)
	}
	return ParseCSV(content)
}

func sizeCheck(content []byte) error {
	if len(content) > MaxBytes {
		return &Error{Problems: []Problem{{Reason: fmt.Sprintf("%d bytes, more than the %d an indicator set may have", len(content), MaxBytes)}}}
	}
	if !utf8.Valid(content) {
		return &Error{Problems: []Problem{{Reason: "not UTF-8 text"}}}
	}
	return nil
}

var csvHeader = []string{"type", "value", "severity", "note"}

// ParseCSV reads "type,value,severity,note" lines after a header line
// naming those columns. Blank lines and lines starting with "#" are
// skipped; severity may be empty (medium) and note may be left out.
func ParseCSV(content []byte) ([]Indicator, error) {
	if err := sizeCheck(content); err != nil {
		return nil, err
	}
	content = bytes.TrimPrefix(content, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(content))
	r.FieldsPerRecord = -1
	r.Comment = '#'
	r.TrimLeadingSpace = true
	var (
		out    []Indicator
		errs   Error
		seen   = map[string]int{}
		header bool
	)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				errs.add(Problem{Line: pe.Line, Reason: pe.Err.Error()})
			} else {
				errs.add(Problem{Reason: err.Error()})
			}
			// The reader cannot be trusted past a quoting error.
			return nil, &errs
		}
		line, _ := r.FieldPos(0)
		if !header {
			header = true
			if len(rec) > len(csvHeader) {
				errs.add(Problem{Line: line, Reason: `the first line must be the header "type,value,severity,note"`})
				return nil, &errs
			}
			for i, want := range csvHeader {
				if i < len(rec) && strings.EqualFold(strings.TrimSpace(rec[i]), want) {
					continue
				}
				if i >= 2 && i >= len(rec) {
					break // severity and note columns may be left out
				}
				errs.add(Problem{Line: line, Reason: `the first line must be the header "type,value,severity,note"`})
				return nil, &errs
			}
			continue
		}
		if len(rec) < 2 || len(rec) > 4 {
			if !errs.add(Problem{Line: line, Reason: fmt.Sprintf("%d columns, want type,value[,severity[,note]]", len(rec))}) {
				break
			}
			continue
		}
		for len(rec) < 4 {
			rec = append(rec, "")
		}
		ind, err := normalize(rec[0], rec[1], rec[2], rec[3])
		if err == nil {
			if first, dup := seen[ind.Key()]; dup {
				err = fmt.Errorf("%s %s is already on line %d", ind.Type, ind.Value, first)
			}
		}
		if err != nil {
			if !errs.add(Problem{Line: line, Reason: err.Error()}) {
				break
			}
			continue
		}
		seen[ind.Key()] = line
		out = append(out, ind)
		if len(out) > MaxIndicators {
			errs.add(Problem{Line: line, Reason: fmt.Sprintf("more than %d indicators", MaxIndicators)})
			break
		}
	}
	if err := errs.orNil(); err != nil {
		return nil, err
	}
	if !header {
		return nil, &Error{Problems: []Problem{{Reason: `empty: want the header "type,value,severity,note" and at least one indicator`}}}
	}
	if len(out) == 0 {
		return nil, &Error{Problems: []Problem{{Reason: "no indicators after the header"}}}
	}
	return out, nil
}

// Normalize checks one indicator and returns it in its normal form.
func Normalize(ind Indicator) (Indicator, error) {
	return normalize(ind.Type, ind.Value, ind.Severity, ind.Note)
}

func normalize(typ, value, severity, note string) (Indicator, error) {
	typ = strings.ToLower(strings.TrimSpace(typ))
	value = strings.TrimSpace(value)
	severity = strings.ToLower(strings.TrimSpace(severity))
	note = strings.TrimSpace(note)
	if value == "" {
		return Indicator{}, errors.New("empty value")
	}
	if strings.ContainsAny(value, "\x00\n\r") {
		return Indicator{}, errors.New("the value holds a NUL or a line break")
	}
	switch typ {
	case TypeSHA256:
		value = strings.ToLower(value)
		if len(value) != 64 {
			return Indicator{}, fmt.Errorf("sha256 %q: want 64 hex digits, got %d characters", clip(value), len(value))
		}
		if _, err := hex.DecodeString(value); err != nil {
			return Indicator{}, fmt.Errorf("sha256 %q: not hex", clip(value))
		}
	case TypeIP:
		a, err := netip.ParseAddr(value)
		if err != nil || a.Zone() != "" {
			return Indicator{}, fmt.Errorf("ip %q: not an IPv4 or IPv6 address", clip(value))
		}
		value = a.Unmap().String()
	case TypeCIDR:
		p, err := netip.ParsePrefix(value)
		if err != nil {
			return Indicator{}, fmt.Errorf("cidr %q: not a prefix like 203.0.113.0/24", clip(value))
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return Indicator{}, fmt.Errorf("cidr %q: a mapped IPv4 prefix shorter than /96", clip(value))
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		value = p.Masked().String()
	case TypePath:
		if !strings.HasPrefix(value, "/") && !isWindowsAbs(value) {
			return Indicator{}, fmt.Errorf("path %q: not absolute", clip(value))
		}
	case TypeFilename:
		if strings.ContainsAny(value, `/\`) {
			return Indicator{}, fmt.Errorf("filename %q: holds a path separator (use type path)", clip(value))
		}
	case "md5", "sha1":
		return Indicator{}, fmt.Errorf("type %q: the sensors report only SHA-256 hashes, so it could never match", typ)
	case "domain":
		return Indicator{}, errors.New(`type "domain": no sensor reports domain names yet, so it could never match`)
	case "":
		return Indicator{}, fmt.Errorf("empty type (want one of %s)", strings.Join(Types, ", "))
	default:
		return Indicator{}, fmt.Errorf("unknown type %q (want one of %s)", clip(typ), strings.Join(Types, ", "))
	}
	switch severity {
	case "":
		severity = DefaultSeverity
	case "low", "medium", "high", "critical":
	default:
		return Indicator{}, fmt.Errorf("severity %q: want low, medium, high or critical", clip(severity))
	}
	if len(note) > MaxNote {
		return Indicator{}, fmt.Errorf("note of %d bytes, more than %d", len(note), MaxNote)
	}
	if strings.ContainsAny(note, "\x00\n\r") {
		return Indicator{}, errors.New("the note holds a NUL or a line break")
	}
	return Indicator{Type: typ, Value: value, Severity: severity, Note: note}, nil
}

func isWindowsAbs(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') &&
		(p[0] >= 'a' && p[0] <= 'z' || p[0] >= 'A' && p[0] <= 'Z')
}

// truncate cuts s to at most n bytes on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	for i := 80; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}

// stixBundle is the part of a STIX 2.1 bundle this package reads.
type stixBundle struct {
	Type    string            `json:"type"`
	Objects []json.RawMessage `json:"objects"`
}

type stixObject struct {
	Type        string   `json:"type"`
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Pattern     string   `json:"pattern"`
	PatternType string   `json:"pattern_type"`
	Labels      []string `json:"labels"`
	// Severity is Cordon's extension: low, medium, high or critical.
	Severity string `json:"x_cordon_severity"`
}

// stixPattern is the one comparison form taken:
// [object:path = 'value'].
var stixPattern = regexp.MustCompile(`^\[\s*([a-z0-9-]+):([A-Za-z0-9_.'-]+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*\]$`)

// ParseSTIX reads the indicator objects of a STIX 2.1 bundle; other
// objects are skipped. Each pattern must be one equality on a SHA-256
// hash, an address, a file name or path:
//
//	[file:hashes.'SHA-256' = '…']
//	[ipv4-addr:value = '203.0.113.7']    (or a CIDR; ipv6-addr likewise)
//	[file:name = 'xmrig']                (a path when it holds a "/")
//
// The severity is the object's x_cordon_severity (medium when absent),
// the note its name and description.
func ParseSTIX(content []byte) ([]Indicator, error) {
	if err := sizeCheck(content); err != nil {
		return nil, err
	}
	var b stixBundle
	if err := json.Unmarshal(content, &b); err != nil {
		return nil, &Error{Problems: []Problem{{Reason: fmt.Sprintf("not a STIX bundle: %v", err)}}}
	}
	if b.Type != "bundle" {
		return nil, &Error{Problems: []Problem{{Reason: fmt.Sprintf(`type %q: want a STIX 2.1 "bundle"`, clip(b.Type))}}}
	}
	var (
		out  []Indicator
		errs Error
		seen = map[string]string{}
	)
	for i, raw := range b.Objects {
		var o stixObject
		if err := json.Unmarshal(raw, &o); err != nil {
			if !errs.add(Problem{Object: fmt.Sprintf("objects[%d]", i), Reason: err.Error()}) {
				break
			}
			continue
		}
		if o.Type != "indicator" {
			continue
		}
		name := o.ID
		if name == "" {
			name = fmt.Sprintf("objects[%d]", i)
		}
		ind, err := stixIndicator(o)
		if err == nil {
			if first, dup := seen[ind.Key()]; dup {
				err = fmt.Errorf("%s %s is already in %s", ind.Type, ind.Value, first)
			}
		}
		if err != nil {
			if !errs.add(Problem{Object: clip(name), Reason: err.Error()}) {
				break
			}
			continue
		}
		seen[ind.Key()] = name
		out = append(out, ind)
		if len(out) > MaxIndicators {
			errs.add(Problem{Object: clip(name), Reason: fmt.Sprintf("more than %d indicators", MaxIndicators)})
			break
		}
	}
	if err := errs.orNil(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, &Error{Problems: []Problem{{Reason: "the bundle holds no indicator objects"}}}
	}
	return out, nil
}

func stixIndicator(o stixObject) (Indicator, error) {
	if o.PatternType != "" && o.PatternType != "stix" {
		return Indicator{}, fmt.Errorf("pattern_type %q: only STIX patterns are read", clip(o.PatternType))
	}
	m := stixPattern.FindStringSubmatch(strings.TrimSpace(o.Pattern))
	if m == nil {
		return Indicator{}, fmt.Errorf("pattern %q: want one comparison like [file:hashes.'SHA-256' = '…'], [ipv4-addr:value = '…'] or [file:name = '…']", clip(o.Pattern))
	}
	object, path := m[1], m[2]
	value := strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(m[3])
	var typ string
	switch {
	case object == "file" && (path == "hashes.'SHA-256'" || path == "hashes.SHA256" || path == "hashes.'SHA256'"):
		typ = TypeSHA256
	case object == "file" && path == "name":
		typ = TypeFilename
		if strings.ContainsAny(value, `/\`) {
			typ = TypePath
		}
	case (object == "ipv4-addr" || object == "ipv6-addr") && path == "value":
		typ = TypeIP
		if strings.Contains(value, "/") {
			typ = TypeCIDR
		}
	case object == "domain-name":
		return Indicator{}, fmt.Errorf("pattern %q: no sensor reports domain names yet, so it could never match", clip(o.Pattern))
	default:
		return Indicator{}, fmt.Errorf("pattern %q: %s:%s is not matched (take file hashes SHA-256, file:name, ipv4-addr:value, ipv6-addr:value)", clip(o.Pattern), object, path)
	}
	note := o.Name
	if o.Description != "" {
		if note != "" {
			note += ": "
		}
		note += o.Description
	}
	// A STIX description is free prose: keep its first line, cut short.
	note, _, _ = strings.Cut(strings.ReplaceAll(note, "\r", ""), "\n")
	note = strings.ReplaceAll(note, "\x00", "")
	note = truncate(note, MaxNote)
	return normalize(typ, value, o.Severity, note)
}
