package ingest

import (
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
