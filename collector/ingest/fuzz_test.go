package ingest

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

// FuzzConvert feeds findings as they come off the wire (protobuf bytes
// from an agent) to convert: it returns a field error or a finding that
// stores and reads back, and never panics.
func FuzzConvert(f *testing.F) {
	for _, sev := range []string{"low", "critical", "bogus"} {
		b, err := proto.Marshal(finding(sev))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	received := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		pf := new(protocol.Finding)
		if err := proto.Unmarshal(data, pf); err != nil {
			return
		}
		got, err := convert("agent-1", "host-1", pf, received)
		if err != nil {
			if _, ok := err.(*store.FieldError); !ok {
				t.Fatalf("convert error %v (%T) names no field", err, err)
			}
			return
		}
		back, err := decodeRecord(encodeRecord(nil, got))
		if err != nil {
			t.Fatalf("a stored finding does not decode: %v", err)
		}
		if !reflect.DeepEqual(back, got) {
			t.Fatalf("round trip changed the finding:\n got %+v\nwant %+v", back, got)
		}
	})
}

// FuzzDecodeRecord feeds arbitrary stored values to decodeRecord: it
// returns an error or a finding that encodes and decodes to itself, and
// never panics.
func FuzzDecodeRecord(f *testing.F) {
	received := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, sev := range []string{"low", "critical"} {
		got, err := convert("agent-1", "host-1", finding(sev), received)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(encodeRecord(nil, got))
	}
	f.Add([]byte{format2})
	f.Add([]byte(`{"id":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeRecord(data)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decode error %v is not errCorrupt", err)
			}
			return
		}
		back, err := decodeRecord(encodeRecord(nil, got))
		if err != nil {
			t.Fatalf("a decoded finding does not decode again: %v", err)
		}
		if !reflect.DeepEqual(back, got) {
			t.Fatalf("round trip changed the finding:\n got %+v\nwant %+v", back, got)
		}
	})
}

// The layout is on disk: this finding encodes to the bytes format 2 has
// always stored for it, and they decode to it.
func TestRecordLayout(t *testing.T) {
	f := &Finding{
		ID: "f1", AgentID: "a1", Hostname: "web-1",
		Rule:     Rule{ID: "r1", Name: "Reverse shell", Version: "2", Author: "cordon", References: []string{"https://example.org/r1"}, License: "MIT"},
		Severity: "high", Attack: Attack{Tactics: []string{"TA0002"}, Techniques: []string{}},
		Summary: "bash -i", Evidence: json.RawMessage(`[{"process":{"pid":42}}]`),
		ObservedAt: time.Date(2026, 1, 1, 0, 0, 0, 5, time.UTC), DetectedAt: time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		ReceivedAt: time.Time{}.UTC(), Drill: true, IncidentID: "inc1",
	}
	const want = "02026631026131057765622d310272310d52657665727365207368656c6c0132" +
		"06636f72646f6e034d495404686967680762617368202d6904696e6331011668" +
		"747470733a2f2f6578616d706c652e6f72672f7231010654413030303200185b" +
		"7b2270726f63657373223a7b22706964223a34327d7d5d80e4ad950d0501ff93" +
		"ebdc03ffdb8ff9ce030001"
	if got := hex.EncodeToString(encodeRecord(nil, f)); got != want {
		t.Errorf("encoded as %s, want %s", got, want)
	}
	b, _ := hex.DecodeString(want)
	back, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, f) {
		t.Errorf("decoded as %+v, want %+v", back, f)
	}
}

// A decoding error names the field that was being decoded.
func TestRecordErrorNamesField(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{nil, "truncated at byte 0"},
		{[]byte(`{"id":"x"}`), "format 123, want 2 at byte 1"},
		{[]byte{format2, 5, 'a'}, "id: length 5 with 1 bytes left at byte 2"},
		{append(append([]byte{format2}, make([]byte, 11)...), 9, 1, 'a'), "rule.references: list of 9 elements with 2 bytes left at byte 13"},
		{append(append([]byte{format2}, make([]byte, 15)...), 2, 0x80, 0xa8, 0xd6, 0xb9, 0x07), "observed_at: 2000000000 nanoseconds at byte 22"},
	}
	for _, tt := range tests {
		_, err := decodeRecord(tt.in)
		if want := "corrupt stored finding: " + tt.want; err == nil || err.Error() != want || !errors.Is(err, errCorrupt) {
			t.Errorf("decoding %x: %v, want %s", tt.in, err, want)
		}
	}
}
