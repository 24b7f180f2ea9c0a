package history

import (
	"encoding/binary"
	"errors"

	"github.com/cordon-edr/cordon/protocol/binenc"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// The events of a block are in a compact binary form of ecs.Event: the
// history spent more time in encoding/json than anywhere but badger, and
// a hunt's scan most of its time decoding JSON.
//
// The pieces are binenc's: strings are a uvarint length and the bytes;
// integers zig-zag varints; a time is a kind byte (0 zero, 1 UTC, 2 with
// the zone offset in seconds that follows as a varint) and the Unix
// nanoseconds (binenc.AppendTime). Optional parts are announced by a byte
// of presence bits. A decoded event is what JSON
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

// errCodec is wrapped by every decoding error of an event.
var errCodec = errors.New("malformed history event")

func appendParent(b []byte, p *ecs.Parent) []byte {
	b = binary.AppendVarint(b, int64(p.PID))
	b = binenc.AppendString(b, p.EntityID)
	b = binenc.AppendString(b, p.Executable)
	b = binenc.AppendString(b, p.Name)
	return binenc.AppendString(b, p.CommandLine)
}

func appendEndpoint(b []byte, e *ecs.Endpoint) []byte {
	b = binenc.AppendString(b, e.IP)
	return binary.AppendVarint(b, int64(e.Port))
}

// appendEvent appends ev's binary form to b.
func appendEvent(b []byte, ev *ecs.Event) []byte {
	b = binenc.AppendTime(b, ev.Timestamp)
	b = binenc.AppendString(b, ev.Event.Category)
	b = binenc.AppendString(b, ev.Event.Type)
	b = binenc.AppendString(b, ev.Event.Action)
	b = binenc.AppendString(b, ev.Event.Module)
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
		b = binenc.AppendString(b, p.EntityID)
		b = binenc.AppendString(b, p.Executable)
		b = binenc.AppendString(b, p.Name)
		b = binenc.AppendString(b, p.CommandLine)
		b = binary.AppendUvarint(b, uint64(len(p.Args)))
		for _, a := range p.Args {
			b = binenc.AppendString(b, a)
		}
		b = binenc.AppendString(b, p.WorkingDirectory)
		b = binenc.AppendTime(b, p.Start)
		b = binenc.AppendString(b, p.User.ID)
		b = binenc.AppendString(b, p.User.Name)
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
		b = binenc.AppendString(b, f.Path)
		b = binenc.AppendString(b, f.Name)
		b = binenc.AppendString(b, f.Directory)
		b = binenc.AppendString(b, f.Type)
		if f.Size != nil {
			b = binary.AppendVarint(b, *f.Size)
		}
		if f.Hash != nil {
			b = binenc.AppendString(b, f.Hash.SHA256)
		}
		b = binenc.AppendString(b, f.Mode)
		b = binenc.AppendString(b, f.UID)
		b = binenc.AppendString(b, f.GID)
		b = binenc.AppendString(b, f.Owner)
	}
	if ev.Source != nil {
		b = appendEndpoint(b, ev.Source)
	}
	if ev.Destination != nil {
		b = appendEndpoint(b, ev.Destination)
	}
	if n := ev.Network; n != nil {
		b = binenc.AppendString(b, n.Transport)
		b = binenc.AppendString(b, n.Type)
		b = binenc.AppendString(b, n.Direction)
	}
	if h := ev.Host; h != nil {
		b = binenc.AppendString(b, h.Hostname)
		b = binenc.AppendString(b, h.ID)
	}
	return b
}

func decodeParent(d *binenc.Decoder, p *ecs.Parent) {
	p.PID = d.Int()
	p.EntityID = d.Str()
	p.Executable = d.Str()
	p.Name = d.Str()
	p.CommandLine = d.Str()
}

func decodeEndpoint(d *binenc.Decoder) *ecs.Endpoint {
	return &ecs.Endpoint{IP: d.Str(), Port: d.Int()}
}

// decodeEvent decodes what appendEvent wrote.
func decodeEvent(b []byte) (ecs.Event, error) {
	d := binenc.NewDecoder(b, errCodec)
	var ev ecs.Event
	d.Part("@timestamp")
	ev.Timestamp = d.Time()
	d.Part("event")
	ev.Event.Category = d.Str()
	ev.Event.Type = d.Str()
	ev.Event.Action = d.Str()
	ev.Event.Module = d.Str()
	has := d.Byte()
	if has&hasProcess != 0 {
		d.Part("process")
		phas := d.Byte()
		p := &ecs.Process{}
		p.PID = d.Int()
		p.EntityID = d.Str()
		p.Executable = d.Str()
		p.Name = d.Str()
		p.CommandLine = d.Str()
		if n := d.Count(1); n > 0 {
			p.Args = make([]string, n)
			for i := range p.Args {
				p.Args[i] = d.Str()
			}
		}
		p.WorkingDirectory = d.Str()
		p.Start = d.Time()
		p.User.ID = d.Str()
		p.User.Name = d.Str()
		if phas&hasParent != 0 {
			d.Part("process.parent")
			p.Parent = &ecs.Parent{}
			decodeParent(&d, p.Parent)
		}
		d.Part("process.ancestry")
		if n := d.Count(5); n > 0 {
			p.Ancestry = make([]ecs.Parent, n)
			for i := range p.Ancestry {
				decodeParent(&d, &p.Ancestry[i])
			}
		}
		if phas&hasExitCode != 0 {
			d.Part("process.exit_code")
			code := d.Int()
			p.ExitCode = &code
		}
		ev.Process = p
	}
	if has&hasFile != 0 {
		d.Part("file")
		fhas := d.Byte()
		f := &ecs.File{}
		f.Path = d.Str()
		f.Name = d.Str()
		f.Directory = d.Str()
		f.Type = d.Str()
		if fhas&hasSize != 0 {
			size := d.Varint()
			f.Size = &size
		}
		if fhas&hasHash != 0 {
			f.Hash = &ecs.Hash{SHA256: d.Str()}
		}
		f.Mode = d.Str()
		f.UID = d.Str()
		f.GID = d.Str()
		f.Owner = d.Str()
		ev.File = f
	}
	if has&hasSource != 0 {
		d.Part("source")
		ev.Source = decodeEndpoint(&d)
	}
	if has&hasDestination != 0 {
		d.Part("destination")
		ev.Destination = decodeEndpoint(&d)
	}
	if has&hasNetwork != 0 {
		d.Part("network")
		ev.Network = &ecs.Network{Transport: d.Str(), Type: d.Str(), Direction: d.Str()}
	}
	if has&hasHost != 0 {
		d.Part("host")
		ev.Host = &ecs.Host{Hostname: d.Str(), ID: d.Str()}
	}
	if err := d.Finish(); err != nil {
		return ecs.Event{}, err
	}
	return ev, nil
}
