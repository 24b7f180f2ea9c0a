package ecs

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the JSON form of e to b, byte for byte what
// encoding/json writes for it (HTML characters escaped, invalid UTF-8
// replaced), without a trailing newline. `cordon-agent events --follow`
// writes every event the agent sees: with encoding/json's reflection that
// was a seventh of the agent's CPU in an exec storm. It fails only where
// encoding/json fails too: a time outside the years 0 to 9999.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	return e.appendJSON(b, nil)
}

// Encoder appends events' JSON as AppendJSON does, and reuses the bytes
// of a process's parent and ancestry it wrote for a recent event when
// the next has an equal lineage: the events of a burst of siblings (an
// exec storm, a build, a shell loop) share their parent and ancestors,
// whose command lines are often the longest strings in them. The zero
// Encoder is ready; one Encoder is for one goroutine.
type Encoder struct {
	next  int
	memos [lineageMemos]lineageMemo
}

// lineageMemos is how many lineages an Encoder keeps: siblings of a few
// parents interleave.
const lineageMemos = 4

type lineageMemo struct {
	parent   *Parent // a copy: the event's may change after it is written
	ancestry []Parent
	json     []byte
}

// Append appends e's JSON to b, byte for byte what AppendJSON writes.
func (enc *Encoder) Append(b []byte, e *Event) ([]byte, error) {
	return e.appendJSON(b, enc)
}

// appendLineage appends p's parent and ancestry fields.
func (enc *Encoder) appendLineage(b []byte, p *Process) []byte {
	if enc == nil {
		return appendLineage(b, p)
	}
	for i := range enc.memos {
		m := &enc.memos[i]
		if m.json != nil && (m.parent == nil) == (p.Parent == nil) &&
			(p.Parent == nil || *m.parent == *p.Parent) && slices.Equal(m.ancestry, p.Ancestry) {
			return append(b, m.json...)
		}
	}
	start := len(b)
	b = appendLineage(b, p)
	m := &enc.memos[enc.next]
	enc.next = (enc.next + 1) % lineageMemos
	m.parent = nil
	if p.Parent != nil {
		parent := *p.Parent
		m.parent = &parent
	}
	m.ancestry = append(m.ancestry[:0], p.Ancestry...)
	m.json = append(m.json[:0], b[start:]...)
	return b
}

func appendLineage(b []byte, p *Process) []byte {
	if p.Parent != nil {
		b = append(b, `,"parent":`...)
		b = p.Parent.appendJSON(b)
	}
	if len(p.Ancestry) > 0 {
		b = append(b, `,"ancestry":[`...)
		for i := range p.Ancestry {
			if i > 0 {
				b = append(b, ',')
			}
			b = p.Ancestry[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	return b
}

func (e *Event) appendJSON(b []byte, enc *Encoder) ([]byte, error) {
	var err error
	b = append(b, `{"@timestamp":`...)
	if b, err = appendTime(b, e.Timestamp); err != nil {
		return b, err
	}
	b = append(b, `,"event":{"category":`...)
	b = appendString(b, e.Event.Category)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Event.Type)
	b = appendField(b, "action", e.Event.Action)
	b = appendField(b, "module", e.Event.Module)
	b = append(b, '}')
	if p := e.Process; p != nil {
		b = append(b, `,"process":{"pid":`...)
		b = strconv.AppendInt(b, int64(p.PID), 10)
		b = appendField(b, "entity_id", p.EntityID)
		b = appendField(b, "executable", p.Executable)
		b = appendField(b, "name", p.Name)
		b = appendField(b, "command_line", p.CommandLine)
		if len(p.Args) > 0 {
			b = append(b, `,"args":[`...)
			for i, a := range p.Args {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendString(b, a)
			}
			b = append(b, ']')
		}
		b = appendField(b, "working_directory", p.WorkingDirectory)
		if !p.Start.IsZero() {
			b = append(b, `,"start":`...)
			if b, err = appendTime(b, p.Start); err != nil {
				return b, err
			}
		}
		if p.User != (User{}) {
			b = append(b, `,"user":{`...)
			b = appendFields(b, "id", p.User.ID, "name", p.User.Name)
			b = append(b, '}')
		}
		if p.Parent != nil || len(p.Ancestry) > 0 {
			b = enc.appendLineage(b, p)
		}
		if p.ExitCode != nil {
			b = append(b, `,"exit_code":`...)
			b = strconv.AppendInt(b, int64(*p.ExitCode), 10)
		}
		b = append(b, '}')
	}
	if f := e.File; f != nil {
		b = append(b, `,"file":{"path":`...)
		b = appendString(b, f.Path)
		b = appendField(b, "name", f.Name)
		b = appendField(b, "directory", f.Directory)
		b = appendField(b, "type", f.Type)
		if f.Size != nil {
			b = append(b, `,"size":`...)
			b = strconv.AppendInt(b, *f.Size, 10)
		}
		if f.Hash != nil {
			b = append(b, `,"hash":{`...)
			b = appendFields(b, "sha256", f.Hash.SHA256)
			b = append(b, '}')
		}
		b = appendField(b, "mode", f.Mode)
		b = appendField(b, "uid", f.UID)
		b = appendField(b, "gid", f.GID)
		b = appendField(b, "owner", f.Owner)
		b = append(b, '}')
	}
	b = e.Source.appendJSON(b, "source")
	b = e.Destination.appendJSON(b, "destination")
	if n := e.Network; n != nil {
		b = append(b, `,"network":{`...)
		b = appendFields(b, "transport", n.Transport, "type", n.Type, "direction", n.Direction)
		b = append(b, '}')
	}
	if h := e.Host; h != nil {
		b = append(b, `,"host":{`...)
		b = appendFields(b, "hostname", h.Hostname, "id", h.ID)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

func (p *Parent) appendJSON(b []byte) []byte {
	b = append(b, `{"pid":`...)
	b = strconv.AppendInt(b, int64(p.PID), 10)
	b = appendField(b, "entity_id", p.EntityID)
	b = appendField(b, "executable", p.Executable)
	b = appendField(b, "name", p.Name)
	b = appendField(b, "command_line", p.CommandLine)
	return append(b, '}')
}

func (ep *Endpoint) appendJSON(b []byte, name string) []byte {
	if ep == nil {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":{`...)
	n := len(b)
	b = appendFields(b, "ip", ep.IP)
	if ep.Port != 0 {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(b, `"port":`...)
		b = strconv.AppendInt(b, int64(ep.Port), 10)
	}
	return append(b, '}')
}

// appendField appends ,"name":value unless value is empty (omitempty
// after an earlier field).
func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

// appendFields appends the non-empty ones of name, value pairs as the
// first fields of an object.
func appendFields(b []byte, pairs ...string) []byte {
	first := true
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, pairs[i]...)
		b = append(b, '"', ':')
		b = appendString(b, pairs[i+1])
	}
	return b
}

func appendTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return b, err
	}
	return append(b, '"'), nil
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes appendString copies as they are: printable ASCII
// but for ", \, <, > and &. One load per byte instead of six compares:
// command lines are most of what the agent writes.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string the way encoding/json does:
// ", \ and control characters escaped (\b \f \n \r \t by name), <, > and &
// as \u003c, \u003e and \u0026, U+2028 and U+2029 escaped, and each byte
// of invalid UTF-8 as \ufffd.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
