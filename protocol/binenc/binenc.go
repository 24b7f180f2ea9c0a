// Package binenc holds the primitives of the compact binary encodings
// that Cordon stores on disk: the agent's event history and the
// collector's findings. Each of those encodings lays out its own fields
// in a fixed order; this package only writes and reads the pieces.
//
// Lengths and counts are uvarints, signed integers zig-zag varints
// (encoding/binary), strings and byte slices a uvarint length and the
// bytes. Times come in two layouts: AppendTime keeps the zone offset and
// nanoseconds since the epoch (years 1678 to 2262), AppendUTC keeps
// seconds and nanoseconds of any time and drops the zone.
//
// A Decoder reads the pieces back and remembers its first error, so a
// decoding function reads every field and checks once at the end. The
// error wraps the sentinel the caller gives, and says what was wrong,
// in which part (see Decoder.Part) and at which byte.
package binenc

import (
	"encoding/binary"
	"fmt"
	"time"
)

// AppendString appends s as a uvarint length and its bytes.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBytes appends p as a uvarint length and its bytes.
func AppendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// Time kinds of AppendTime.
const (
	timeZero  = 0
	timeUTC   = 1
	timeZoned = 2
)

// maxZoneOffset bounds a zone offset read back, in seconds.
const maxZoneOffset = 24 * 3600

// AppendTime appends t as a kind byte (0 the zero time, 1 UTC, 2 with the
// zone offset in seconds that follows as a varint) and, unless zero, the
// Unix nanoseconds as a varint. Decoder.Time gives back a time in UTC or
// in a fixed zone with the same offset; the zone's name is lost.
func AppendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, timeZero)
	}
	_, off := t.Zone()
	if off == 0 {
		b = append(b, timeUTC)
	} else {
		b = append(b, timeZoned)
		b = binary.AppendVarint(b, int64(off))
	}
	return binary.AppendVarint(b, t.UnixNano())
}

// AppendUTC appends t as its Unix seconds (varint) and nanoseconds within
// the second (uvarint). Decoder.UTC gives it back in UTC.
func AppendUTC(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// Decoder reads the pieces of an encoding from a byte slice. After the
// first error every read returns a zero value and Err returns that
// error.
type Decoder struct {
	b    []byte
	size int // of the whole input, to say where an error is
	part string
	base error
	err  error
}

// NewDecoder returns a decoder of b whose errors wrap base.
func NewDecoder(b []byte, base error) Decoder {
	return Decoder{b: b, size: len(b), base: base}
}

// Part names the part of the input read next (a field, a section), for
// the errors that follow.
func (d *Decoder) Part(name string) { d.part = name }

// Fail records an error, unless there is one already, and stops the
// decoding. Encodings call it for values that decode but are not valid.
func (d *Decoder) Fail(format string, a ...any) {
	if d.err == nil {
		at := d.size - len(d.b)
		what := fmt.Sprintf(format, a...)
		if d.part != "" {
			d.err = fmt.Errorf("%w: %s: %s at byte %d", d.base, d.part, what, at)
		} else {
			d.err = fmt.Errorf("%w: %s at byte %d", d.base, what, at)
		}
	}
	d.b = nil
}

// Err returns the first error.
func (d *Decoder) Err() error { return d.err }

// Len returns the number of bytes not read yet.
func (d *Decoder) Len() int { return len(d.b) }

// Finish returns the first error, or an error if bytes are left over.
func (d *Decoder) Finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.part = ""
		d.Fail("%d bytes left over", len(d.b))
	}
	return d.err
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if len(d.b) == 0 {
		d.Fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.badVarint(n)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Varint reads a signed (zig-zag) varint.
func (d *Decoder) Varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.badVarint(n)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *Decoder) badVarint(n int) {
	if n == 0 {
		d.Fail("truncated number")
	} else {
		d.Fail("number overflows 64 bits")
	}
}

// Uint64 reads eight bytes as a big-endian unsigned integer.
func (d *Decoder) Uint64() uint64 {
	if len(d.b) < 8 {
		d.Fail("truncated: %d of 8 bytes", len(d.b))
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// Int reads a signed varint as an int.
func (d *Decoder) Int() int { return int(d.Varint()) }

// Bytes reads a length-prefixed byte slice. The slice points into the
// decoder's input.
func (d *Decoder) Bytes() []byte {
	n := d.Uvarint()
	if n > uint64(len(d.b)) {
		d.Fail("length %d with %d bytes left", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// Str reads a length-prefixed string. (Not String: a Decoder must not be
// a fmt.Stringer, printing one would consume its input.)
func (d *Decoder) Str() string { return string(d.Bytes()) }

// Count reads the number of elements of a list, each of which takes at
// least min bytes (min > 0): a count the rest of the input cannot hold
// fails before anything is allocated for it.
func (d *Decoder) Count(min int) int {
	n := d.Uvarint()
	if n > uint64(len(d.b)/min) {
		d.Fail("list of %d elements with %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

// Time reads what AppendTime wrote.
func (d *Decoder) Time() time.Time {
	var t time.Time
	switch k := d.Byte(); k {
	case timeZero:
	case timeUTC:
		t = time.Unix(0, d.Varint()).UTC()
	case timeZoned:
		off := d.Varint()
		if off < -maxZoneOffset || off > maxZoneOffset {
			d.Fail("zone offset of %d seconds", off)
			break
		}
		t = time.Unix(0, d.Varint()).In(time.FixedZone("", int(off)))
	default:
		d.Fail("time kind %d", k)
	}
	if d.err != nil {
		return time.Time{}
	}
	return t
}

// UTC reads what AppendUTC wrote.
func (d *Decoder) UTC() time.Time {
	sec, ns := d.Varint(), d.Uvarint()
	if ns >= 1e9 {
		d.Fail("%d nanoseconds", ns)
	}
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(ns)).UTC()
}
