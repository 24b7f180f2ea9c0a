package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"
)

func hb(n int64) *Frame {
	return &Frame{Body: &Frame_Heartbeat{Heartbeat: &Heartbeat{SentUnixNano: n, SpoolPending: 3}}}
}

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	frames := []*Frame{
		hb(1),
		{Body: &Frame_Hello{Hello: &Hello{Version: CurrentVersion(), Host: &HostFacts{Hostname: "h"}}}},
		{Body: &Frame_FindingBatch{FindingBatch: &FindingBatch{Seq: 7, Findings: []*Finding{{Id: "a", Severity: "high"}}}}},
	}
	for _, f := range frames {
		if err := WriteFrame(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	r := NewFrameReader(&buf, 0)
	for i, want := range frames {
		got, err := r.Read()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("frame %d: got %v, want %v", i, got, want)
		}
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("after the last frame: got %v, want io.EOF", err)
	}
}

func TestFrameReaderRejects(t *testing.T) {
	header := func(n uint32) []byte {
		b := make([]byte, 4)
		binary.BigEndian.PutUint32(b, n)
		return b
	}
	good, _ := AppendFrame(nil, hb(1))
	tests := []struct {
		name  string
		input []byte
		max   int
		want  error
	}{
		{"oversized declared length", header(MaxFrameSize + 1), 0, ErrFrameTooLarge},
		{"above a reader's own limit", good, 3, ErrFrameTooLarge},
		{"truncated payload", good[:len(good)-1], 0, io.ErrUnexpectedEOF},
		{"truncated header", good[:2], 0, io.ErrUnexpectedEOF},
		{"garbage payload", append(header(3), 0xff, 0xff, 0xff), 0, ErrMalformedFrame},
		{"empty frame", header(0), 0, ErrMalformedFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFrameReader(bytes.NewReader(tt.input), tt.max).Read()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAppendFrameRefusesOversized(t *testing.T) {
	f := &Frame{Body: &Frame_FindingBatch{FindingBatch: &FindingBatch{Findings: []*Finding{{EvidenceJson: make([]byte, MaxFrameSize)}}}}}
	if _, err := AppendFrame(nil, f); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
}

func TestCheckVersion(t *testing.T) {
	if err := CheckVersion(CurrentVersion()); err != nil {
		t.Fatal(err)
	}
	if err := CheckVersion(&Version{Major: VersionMajor, Minor: 99}); err != nil {
		t.Fatalf("a newer minor must be accepted: %v", err)
	}
	for _, v := range []*Version{nil, {Major: VersionMajor + 1}, {Major: 0}} {
		var ve *ErrVersion
		if err := CheckVersion(v); !errors.As(err, &ve) {
			t.Fatalf("version %v: got %v, want *ErrVersion", v, err)
		}
	}
}

func FuzzFrameReader(f *testing.F) {
	for _, fr := range []*Frame{hb(1), ErrorFrameOf(ErrorAuth, "no"), {Body: &Frame_Command{Command: &Command{Id: "c", Args: map[string]string{"pid": "1"}}}}} {
		b, _ := AppendFrame(nil, fr)
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewFrameReader(bytes.NewReader(data), 1<<16)
		for i := 0; i < 64; i++ {
			fr, err := r.Read()
			if err != nil {
				return
			}
			// Whatever decodes must encode again.
			if _, err := AppendFrame(nil, fr); err != nil {
				t.Fatalf("re-encoding a decoded frame: %v", err)
			}
		}
	})
}
