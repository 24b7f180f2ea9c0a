package binenc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var errTest = errors.New("malformed test value")

func TestAppend(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"empty string", AppendString(nil, ""), "00"},
		{"string", AppendString(nil, "hé"), "0368c3a9"},
		{"string of 200 bytes", AppendString(nil, strings.Repeat("a", 200))[:2], "c801"},
		{"nil bytes", AppendBytes(nil, nil), "00"},
		{"bytes", AppendBytes(nil, []byte{0, 0xff}), "0200ff"},
		{"appends to what is there", AppendString([]byte{7}, "x"), "070178"},
		{"zero time", AppendTime(nil, time.Time{}), "00"},
		{"UTC time", AppendTime(nil, time.Unix(0, 1)), "0102"},
		{"time in a zone east", AppendTime(nil, time.Unix(0, 0).In(time.FixedZone("CET", 3600))), "02a03800"},
		{"time in a zone west", AppendTime(nil, time.Unix(1, 0).In(time.FixedZone("", -5*3600))), "029f990280a8d6b907"},
		{"UTC of a time before 1970", AppendUTC(nil, time.Unix(-1, 999999999)), "01ff93ebdc03"},
		{"UTC of the zero time", AppendUTC(nil, time.Time{}), "ffdb8ff9ce0300"},
		{"UTC drops the zone", AppendUTC(nil, time.Unix(1, 5).In(time.FixedZone("", 3600))), "0205"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(tt.got); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestDecoderRoundTrip(t *testing.T) {
	east := time.FixedZone("CET", 3600)
	var b []byte
	b = append(b, 0xfe)
	b = AppendString(b, "hé")
	b = AppendBytes(b, []byte{1, 2, 3})
	b = AppendString(b, "")
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01) // uvarint max
	b = append(b, 0x01)                                                       // varint -1
	b = append(b, 0x03)                                                       // count 3
	b = AppendTime(b, time.Time{})
	b = AppendTime(b, time.Unix(5, 6))
	b = AppendTime(b, time.Unix(7, 8).In(east))
	b = AppendUTC(b, time.Unix(-62135596800, 0))
	b = AppendUTC(b, time.Unix(1e10, 999999999).In(east))

	d := NewDecoder(b, errTest)
	if c := d.Byte(); c != 0xfe {
		t.Errorf("byte %#x", c)
	}
	if s := d.Str(); s != "hé" {
		t.Errorf("string %q", s)
	}
	if p := d.Bytes(); !bytes.Equal(p, []byte{1, 2, 3}) || cap(p) != 3 {
		t.Errorf("bytes %v (capacity %d)", p, cap(p))
	}
	if s := d.Str(); s != "" {
		t.Errorf("empty string %q", s)
	}
	if v := d.Uvarint(); v != math.MaxUint64 {
		t.Errorf("uvarint %d", v)
	}
	if v := d.Int(); v != -1 {
		t.Errorf("int %d", v)
	}
	if n := d.Count(1); n != 3 {
		t.Errorf("count %d", n)
	}
	if tm := d.Time(); !tm.IsZero() {
		t.Errorf("zero time %v", tm)
	}
	if tm := d.Time(); !tm.Equal(time.Unix(5, 6)) || tm.Location() != time.UTC {
		t.Errorf("UTC time %v", tm)
	}
	if tm := d.Time(); !tm.Equal(time.Unix(7, 8)) {
		t.Errorf("zoned time %v", tm)
	} else if _, off := tm.Zone(); off != 3600 {
		t.Errorf("zoned time %v has offset %d", tm, off)
	}
	if tm := d.UTC(); !tm.IsZero() {
		t.Errorf("UTC of the zero time %v", tm)
	}
	if tm := d.UTC(); !tm.Equal(time.Unix(1e10, 999999999)) || tm.Location() != time.UTC {
		t.Errorf("UTC time %v", tm)
	}
	if d.Len() != 0 {
		t.Errorf("%d bytes left", d.Len())
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestDecoderErrors(t *testing.T) {
	overflow := "ffffffffffffffffff7f" // ten bytes, more than 64 bits
	tests := []struct {
		name string
		in   string
		read func(d *Decoder)
		want string
	}{
		{"empty", "", func(d *Decoder) { d.Byte() }, "truncated at byte 0"},
		{"truncated uvarint", "0580", func(d *Decoder) { d.Byte(); d.Uvarint() }, "truncated number at byte 1"},
		{"truncated varint", "", func(d *Decoder) { d.Varint() }, "truncated number at byte 0"},
		{"uvarint overflow", overflow, func(d *Decoder) { d.Uvarint() }, "number overflows 64 bits at byte 0"},
		{"varint overflow", overflow, func(d *Decoder) { d.Int() }, "number overflows 64 bits at byte 0"},
		{"string past the end", "0561", func(d *Decoder) { d.Str() }, "length 5 with 1 bytes left at byte 1"},
		{"bytes past the end", "0102ff", func(d *Decoder) { d.Byte(); d.Bytes() }, "length 2 with 1 bytes left at byte 2"},
		{"count past the end", "03aabb", func(d *Decoder) { d.Count(1) }, "list of 3 elements with 2 bytes left at byte 1"},
		{"count of large elements", "020000000000", func(d *Decoder) { d.Count(5) }, "list of 2 elements with 5 bytes left at byte 1"},
		{"truncated uint64", "01020304", func(d *Decoder) { d.Uint64() }, "truncated: 4 of 8 bytes at byte 0"},
		{"time kind", "07", func(d *Decoder) { d.Time() }, "time kind 7 at byte 1"},
		{"truncated time", "01", func(d *Decoder) { d.Time() }, "truncated number at byte 1"},
		{"zone offset", "02a0fe0a00", func(d *Decoder) { d.Time() }, "zone offset of 90000 seconds at byte 4"},
		{"nanoseconds", "0280a8d6b907", func(d *Decoder) { d.UTC() }, "2000000000 nanoseconds at byte 6"},
		{"left over", "000102", func(d *Decoder) { d.Byte() }, "2 bytes left over at byte 1"},
		{"part named", "0161", func(d *Decoder) { d.Part("process.name"); d.Str(); d.Part("process.args"); d.Count(1) },
			"process.args: truncated number at byte 2"},
		{"first error sticks", "ff", func(d *Decoder) { d.Part("a"); d.Time(); d.Part("b"); d.Fail("later") }, "a: time kind 255 at byte 1"},
		{"caller's check", "09", func(d *Decoder) { d.Part("flag"); d.Fail("%d is not 0 or 1", d.Byte()) }, "flag: 9 is not 0 or 1 at byte 1"},
	}
	for _, tt := range tests {
		in, err := hex.DecodeString(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		d := NewDecoder(in, errTest)
		tt.read(&d)
		err = d.Finish()
		if !errors.Is(err, errTest) {
			t.Errorf("%s: error %v does not wrap the decoder's", tt.name, err)
			continue
		}
		if want := errTest.Error() + ": " + tt.want; err.Error() != want {
			t.Errorf("%s: %q, want %q", tt.name, err, want)
		}
	}
}

// After an error every read returns a zero value and consumes nothing.
func TestDecoderZeroAfterError(t *testing.T) {
	d := NewDecoder([]byte{0x07, 0x01, 0x02, 0x03}, errTest)
	d.Time()
	if d.Err() == nil {
		t.Fatal("time kind 7 decoded")
	}
	if d.Len() != 0 || d.Byte() != 0 || d.Uvarint() != 0 || d.Uint64() != 0 || d.Varint() != 0 || d.Int() != 0 ||
		d.Bytes() != nil || d.Str() != "" || d.Count(1) != 0 || !d.Time().IsZero() || !d.UTC().IsZero() {
		t.Error("a read after the first error returned a value")
	}
}

func TestDecoderUint64(t *testing.T) {
	d := NewDecoder([]byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09}, errTest)
	if v := d.Uint64(); v != 0x0102030405060708 {
		t.Errorf("Uint64 = %#x, want 0x0102030405060708", v)
	}
	if c := d.Byte(); c != 0x09 || d.Finish() != nil {
		t.Errorf("after Uint64: byte %#x, error %v", c, d.Finish())
	}
}
