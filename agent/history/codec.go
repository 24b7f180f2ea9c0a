package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// The events of a block are in a compact binary form of ecs.Event: the
// history spent more time in encoding/json than anywhere but badger, and
// a hunt's scan most of its time decoding JSON.
//
// Strings are a uvarint length and the bytes; integers zig-zag varints;
// a time is a kind byte (0 zero, 1 UTC, 2 with the zone offset in seconds
// that follows as a varint) and the Unix nanoseconds; optional parts are
// announced by a byte of presence bits. A decoded event is what JSON
// would have given back: empty slices come back nil, times in UTC or in
// a fixed zone with the original offset, so hunts answer the same.
//
// TestCodecCoversEvent fills every field of ecs.Event: a field added
// there and not here fails it.

// Presence bits of an event's parts.
const (
	hasProcess = 1 << iota
	hasFile
	hasSource
	hasDestination
	hasNetwork
	hasHost
)

// Presence bits of a process's and a file's optional parts.
const (
	hasParent = 1 << iota
	hasExitCode
)

const (
	hasSize = 1 << iota
	hasHash
)

var errCodec = errors.New("malformed history event")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	_, off := t.Zone()
	if off == 0 {
		b = append(b, 1)
	} else {
		b = append(b, 2)
		b = binary.AppendVarint(b, int64(off))
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func appendParent(b []byte, p *ecs.Parent) []byte {
	b = binary.AppendVarint(b, int64(p.PID))
	b = appendString(b, p.EntityID)
	b = appendString(b, p.Executable)
	b = appendString(b, p.Name)
	return appendString(b, p.CommandLine)
}

func appendEndpoint(b []byte, e *ecs.Endpoint) []byte {
	b = appendString(b, e.IP)
	return binary.AppendVarint(b, int64(e.Port))
}

// appendEvent appends ev's binary form to b.
func appendEvent(b []byte, ev *ecs.Event) []byte {
	b = appendTime(b, ev.Timestamp)
	b = appendString(b, ev.Event.Category)
	b = appendString(b, ev.Event.Type)
	b = appendString(b, ev.Event.Action)
	b = appendString(b, ev.Event.Module)
	var has byte
	for bit, present := range []bool{ev.Process != nil, ev.File != nil, ev.Source != nil, ev.Destination != nil, ev.Network != nil, ev.Host != nil} {
		if present {
			has |= 1 << bit
		}
	}
	b = append(b, has)
	if p := ev.Process; p != nil {
		var phas byte
		if p.Parent != nil {
			phas |= hasParent
		}
		if p.ExitCode != nil {
			phas |= hasExitCode
		}
		b = append(b, phas)
		b = binary.AppendVarint(b, int64(p.PID))
		b = appendString(b, p.EntityID)
		b = appendString(b, p.Executable)
		b = appendString(b, p.Name)
		b = appendString(b, p.CommandLine)
		b = binary.AppendUvarint(b, uint64(len(p.Args)))
		for _, a := range p.Args {
			b = appendString(b, a)
		}
		b = appendString(b, p.WorkingDirectory)
		b = appendTime(b, p.Start)
		b = appendString(b, p.User.ID)
		b = appendString(b, p.User.Name)
		if p.Parent != nil {
			b = appendParent(b, p.Parent)
		}
		b = binary.AppendUvarint(b, uint64(len(p.Ancestry)))
		for i := range p.Ancestry {
			b = appendParent(b, &p.Ancestry[i])
		}
		if p.ExitCode != nil {
			b = binary.AppendVarint(b, int64(*p.ExitCode))
		}
	}
	if f := ev.File; f != nil {
		var fhas byte
		if f.Size != nil {
			fhas |= hasSize
		}
		if f.Hash != nil {
			fhas |= hasHash
		}
		b = append(b, fhas)
		b = appendString(b, f.Path)
		b = appendString(b, f.Name)
		b = appendString(b, f.Directory)
		b = appendString(b, f.Type)
		if f.Size != nil {
			b = binary.AppendVarint(b, *f.Size)
		}
		if f.Hash != nil {
			b = appendString(b, f.Hash.SHA256)
		}
		b = appendString(b, f.Mode)
		b = appendString(b, f.UID)
		b = appendString(b, f.GID)
		b = appendString(b, f.Owner)
	}
	if ev.Source != nil {
		b = appendEndpoint(b, ev.Source)
	}
	if ev.Destination != nil {
		b = appendEndpoint(b, ev.Destination)
	}
	if n := ev.Network; n != nil {
		b = appendString(b, n.Transport)
		b = appendString(b, n.Type)
		b = appendString(b, n.Direction)
	}
	if h := ev.Host; h != nil {
		b = appendString(b, h.Hostname)
		b = appendString(b, h.ID)
	}
	return b
}

// decoder reads an event's binary form; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCodec
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int { return int(d.varint()) }

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// count reads a slice's length, each element taking at least min bytes.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) time() time.Time {
	switch d.byte() {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(0, d.varint()).UTC()
	case 2:
		off := d.varint()
		if off < -24*3600 || off > 24*3600 {
			d.fail()
			return time.Time{}
		}
		return time.Unix(0, d.varint()).In(time.FixedZone("", int(off)))
	}
	d.fail()
	return time.Time{}
}

func (d *decoder) parent(p *ecs.Parent) {
	p.PID = d.int()
	p.EntityID = d.string()
	p.Executable = d.string()
	p.Name = d.string()
	p.CommandLine = d.string()
}

func (d *decoder) endpoint() *ecs.Endpoint {
	return &ecs.Endpoint{IP: d.string(), Port: d.int()}
}

// decodeEvent decodes what appendEvent wrote.
func decodeEvent(b []byte) (ecs.Event, error) {
	d := decoder{b: b}
	var ev ecs.Event
	ev.Timestamp = d.time()
	ev.Event.Category = d.string()
	ev.Event.Type = d.string()
	ev.Event.Action = d.string()
	ev.Event.Module = d.string()
	has := d.byte()
	if has&hasProcess != 0 {
		phas := d.byte()
		p := &ecs.Process{}
		p.PID = d.int()
		p.EntityID = d.string()
		p.Executable = d.string()
		p.Name = d.string()
		p.CommandLine = d.string()
		if n := d.count(1); n > 0 {
			p.Args = make([]string, n)
			for i := range p.Args {
				p.Args[i] = d.string()
			}
		}
		p.WorkingDirectory = d.string()
		p.Start = d.time()
		p.User.ID = d.string()
		p.User.Name = d.string()
		if phas&hasParent != 0 {
			p.Parent = &ecs.Parent{}
			d.parent(p.Parent)
		}
		if n := d.count(5); n > 0 {
			p.Ancestry = make([]ecs.Parent, n)
			for i := range p.Ancestry {
				d.parent(&p.Ancestry[i])
			}
		}
		if phas&hasExitCode != 0 {
			code := d.int()
			p.ExitCode = &code
		}
		ev.Process = p
	}
	if has&hasFile != 0 {
		fhas := d.byte()
		f := &ecs.File{}
		f.Path = d.string()
		f.Name = d.string()
		f.Directory = d.string()
		f.Type = d.string()
		if fhas&hasSize != 0 {
			size := d.varint()
			f.Size = &size
		}
		if fhas&hasHash != 0 {
			f.Hash = &ecs.Hash{SHA256: d.string()}
		}
		f.Mode = d.string()
		f.UID = d.string()
		f.GID = d.string()
		f.Owner = d.string()
		ev.File = f
	}
	if has&hasSource != 0 {
		ev.Source = d.endpoint()
	}
	if has&hasDestination != 0 {
		ev.Destination = d.endpoint()
	}
	if has&hasNetwork != 0 {
		ev.Network = &ecs.Network{Transport: d.string(), Type: d.string(), Direction: d.string()}
	}
	if has&hasHost != 0 {
		ev.Host = &ecs.Host{Hostname: d.string(), ID: d.string()}
	}
	if d.err != nil {
		return ecs.Event{}, d.err
	}
	if len(d.b) != 0 {
		return ecs.Event{}, fmt.Errorf("%w: %d trailing bytes", errCodec, len(d.b))
	}
	return ev, nil
}
