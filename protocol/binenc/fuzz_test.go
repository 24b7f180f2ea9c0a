package binenc

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The reads FuzzDecoder chooses from, by an op byte modulo numOps.
const (
	opByte = iota
	opUvarint
	opVarint
	opBytes
	opString
	opCount
	opTime
	opUTC
	numOps
)

// zonedTime tells Time's values from UTC's.
type zonedTime struct{ time.Time }

// read decodes one value for op. In the second pass a count is read as
// the plain uvarint it was encoded again as: a shorter encoding may no
// longer leave the bytes the count asked for.
func read(d *Decoder, op byte, second bool) any {
	switch op % numOps {
	case opByte:
		return d.Byte()
	case opUvarint:
		return d.Uvarint()
	case opVarint:
		return d.Varint()
	case opBytes:
		return d.Bytes()
	case opString:
		return d.Str()
	case opCount:
		if second {
			return int(d.Uvarint())
		}
		return d.Count(1 + int(op/numOps)%8)
	case opTime:
		return zonedTime{d.Time()}
	default:
		return d.UTC()
	}
}

// write encodes a value read.
func write(b []byte, v any) []byte {
	switch v := v.(type) {
	case byte:
		return append(b, v)
	case uint64:
		return binary.AppendUvarint(b, v)
	case int64:
		return binary.AppendVarint(b, v)
	case []byte:
		return AppendBytes(b, v)
	case string:
		return AppendString(b, v)
	case int:
		return binary.AppendUvarint(b, uint64(v))
	case zonedTime:
		return AppendTime(b, v.Time)
	case time.Time:
		return AppendUTC(b, v)
	}
	panic("no encoding for a " + reflect.TypeOf(v).String())
}

// same reports whether two values read are the same; times are the same
// instant with the same offset.
func same(a, b any) bool {
	switch a := a.(type) {
	case zonedTime:
		b := b.(zonedTime)
		_, ao := a.Zone()
		_, bo := b.Zone()
		return a.Equal(b.Time) && ao == bo && a.IsZero() == b.IsZero()
	case time.Time:
		b := b.(time.Time)
		return a.Equal(b) && b.Location() == time.UTC
	case []byte:
		return string(a) == string(b.([]byte))
	}
	return a == b
}

// FuzzDecoder runs a sequence of reads (ops) over arbitrary input: no
// panic, the error wraps the decoder's sentinel and names the part, a
// failed read returns a zero value and leaves nothing to read, and the
// values read, encoded again, decode to the same values.
func FuzzDecoder(f *testing.F) {
	var b []byte
	b = AppendString(b, "name")
	b = AppendTime(b, time.Unix(1, 2).In(time.FixedZone("", -3600)))
	b = AppendUTC(b, time.Unix(3, 4))
	f.Add([]byte{opString, opTime, opUTC}, b)
	f.Add([]byte{opByte, opUvarint, opVarint, opBytes}, []byte{1, 0x80, 0x01, 0x03, 0x02, 0xaa, 0xbb})
	f.Add([]byte{opCount + 4*numOps}, []byte{0x02, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops, data []byte) {
		d := NewDecoder(data, errTest)
		d.Part("fuzzed")
		var vals []any
		for _, op := range ops {
			before := d.Len()
			v := read(&d, op, false)
			if d.Len() > before {
				t.Fatalf("op %d: %d bytes left, %d before", op, d.Len(), before)
			}
			if d.Err() != nil {
				if d.Len() != 0 || !reflect.ValueOf(v).IsZero() {
					t.Fatalf("op %d failed (%v) and returned %#v with %d bytes left", op, d.Err(), v, d.Len())
				}
				break
			}
			vals = append(vals, v)
		}
		if err := d.Err(); err != nil {
			if !errors.Is(err, errTest) || !strings.Contains(err.Error(), "fuzzed: ") {
				t.Fatalf("error %q does not wrap the sentinel and name the part", err)
			}
			return
		}
		var again []byte
		for _, v := range vals {
			again = write(again, v)
		}
		d = NewDecoder(again, errTest)
		for i, v := range vals {
			if w := read(&d, ops[i], true); !same(v, w) {
				t.Fatalf("op %d: %#v encoded again decodes as %#v", ops[i], v, w)
			}
		}
		if err := d.Finish(); err != nil {
			t.Fatalf("values encoded again: %v", err)
		}
	})
}
