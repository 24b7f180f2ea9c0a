package ingest

import (
	"encoding/json"
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
		b, err := json.Marshal(record{Finding: *got, Seq: 1})
		if err != nil {
			t.Fatalf("a valid finding does not encode: %v", err)
		}
		var back record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("a stored finding does not decode: %v", err)
		}
		if back.ID != got.ID || back.AgentID != "agent-1" {
			t.Fatalf("round trip changed the finding: %+v", back)
		}
	})
}
