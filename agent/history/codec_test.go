package history

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// fill sets every field reachable from v to a value that is not zero,
// slices to two elements; n makes the values differ.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 3, 4, 5, 6, 7, *n, time.FixedZone("", 3600))))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), n)
		}
	case reflect.String:
		v.SetString("v" + string(rune('a'+*n%26)) + "\u00e9")
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(-*n * 1000))
	default:
		panic("fill: no value for a " + v.Kind().String() + ": teach appendEvent and decodeEvent, then this test")
	}
}

// Every field of ecs.Event goes through the codec: a field added to
// ecs.Event and not to the codec fails here.
func TestCodecCoversEvent(t *testing.T) {
	var ev ecs.Event
	n := 0
	fill(reflect.ValueOf(&ev).Elem(), &n)
	got, err := decodeEvent(appendEvent(nil, &ev))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(&ev)
	b, _ := json.Marshal(&got)
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip lost something:\n got %s\nwant %s", b, a)
	}
	if !got.Timestamp.Equal(ev.Timestamp) || !reflect.DeepEqual(got.Process.Args, ev.Process.Args) {
		t.Fatalf("round trip: %+v", got)
	}
}

// A decoded event is what the JSON of the layout before it gave back:
// the same JSON for the hunts' answers, the same values for queries.
func TestCodecMatchesJSON(t *testing.T) {
	code, size := 0, int64(0)
	evs := []ecs.Event{
		procEvent(3, "/usr/bin/cat"),
		syntheticEvent(0), syntheticEvent(3), syntheticEvent(5),
		stormEvent(1),
		{Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 5, time.Local), Event: ecs.Meta{Category: "process", Type: "end"},
			Process: &ecs.Process{PID: 1, Args: []string{}, ExitCode: &code, Parent: &ecs.Parent{}}},
		{Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("X", -5*3600)), Event: ecs.Meta{Category: "file", Type: "creation"},
			File: &ecs.File{Path: "/x", Size: &size, Hash: &ecs.Hash{}}, Host: &ecs.Host{}},
	}
	for i, ev := range evs {
		got, err := decodeEvent(appendEvent(nil, &ev))
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		js, _ := json.Marshal(&ev)
		var viaJSON ecs.Event
		if err := json.Unmarshal(js, &viaJSON); err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(&viaJSON)
		b, _ := json.Marshal(&got)
		if !bytes.Equal(a, b) {
			t.Errorf("event %d:\n got %s\nwant %s", i, b, a)
		}
		got.Timestamp, viaJSON.Timestamp = time.Time{}, time.Time{}
		if got.Process != nil {
			got.Process.Start, viaJSON.Process.Start = time.Time{}, time.Time{}
		}
		if !reflect.DeepEqual(got, viaJSON) {
			t.Errorf("event %d: %+v, through JSON %+v", i, got, viaJSON)
		}
	}
}

func TestCodecRejectsDamage(t *testing.T) {
	ev := syntheticEvent(3)
	b := appendEvent(nil, &ev)
	for i := range b {
		if _, err := decodeEvent(b[:i]); err == nil {
			t.Fatalf("an event cut at %d of %d bytes decoded", i, len(b))
		}
	}
	if _, err := decodeEvent(append(b, 0)); err == nil {
		t.Fatal("trailing bytes decoded")
	}
	// The error names the part that was being decoded.
	_, err := decodeEvent([]byte{0, 0, 0, 0, 0, hasHost, 1, 'h'})
	if want := "malformed history event: host: truncated number at byte 8"; err == nil || err.Error() != want || !errors.Is(err, errCodec) {
		t.Errorf("host cut short: %v, want %s", err, want)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, ev := range []ecs.Event{syntheticEvent(0), syntheticEvent(3), syntheticEvent(5), stormEvent(1)} {
		f.Add(appendEvent(nil, &ev))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := decodeEvent(b)
		if err != nil {
			return
		}
		again, err := decodeEvent(appendEvent(nil, &ev))
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		x, _ := json.Marshal(&ev)
		y, _ := json.Marshal(&again)
		if !bytes.Equal(x, y) {
			t.Fatalf("re-encoding changed the event:\n%s\n%s", x, y)
		}
	})
}

// The layout is on disk: these events encode to the bytes the history
// has always written for them.
func TestCodecLayout(t *testing.T) {
	code, size := 137, int64(4096)
	tests := []struct {
		name string
		ev   ecs.Event
		want string
	}{
		{"bare", ecs.Event{}, "000000000000"},
		{"every part", ecs.Event{
			Timestamp: time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("CET", 3600)),
			Event:     ecs.Meta{Category: "process", Type: "end", Action: "exit", Module: "cordon"},
			Process: &ecs.Process{PID: 42, EntityID: "e42", Executable: "/bin/sh", Name: "sh", CommandLine: "sh -c x",
				Args: []string{"sh", "-c", "x"}, WorkingDirectory: "/", Start: time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC),
				User:     ecs.User{ID: "0", Name: "root"},
				Parent:   &ecs.Parent{PID: 1, EntityID: "e1", Executable: "/sbin/init", Name: "init", CommandLine: "init"},
				Ancestry: []ecs.Parent{{PID: 0}}, ExitCode: &code},
			File: &ecs.File{Path: "/tmp/a", Name: "a", Directory: "/tmp", Type: "file", Size: &size, Hash: &ecs.Hash{SHA256: "ab"},
				Mode: "0644", UID: "0", GID: "0", Owner: "root"},
			Source:      &ecs.Endpoint{IP: "10.0.0.1", Port: 40000},
			Destination: &ecs.Endpoint{IP: "::1", Port: 443},
			Network:     &ecs.Network{Transport: "tcp", Type: "ipv6", Direction: "egress"},
			Host:        &ecs.Host{Hostname: "web-1", ID: "h1"},
		},
			"02a03890d8b0ceeaeec399310770726f6365737303656e64046578697406636f" +
				"72646f6e3f035403653432072f62696e2f7368027368077368202d6320780302" +
				"7368022d630178012f018080b9ab82abc59931013004726f6f74020265310a2f" +
				"7362696e2f696e697404696e697404696e6974010000000000920203062f746d" +
				"702f610161042f746d700466696c65804002616204303634340130013004726f" +
				"6f740831302e302e302e3180f104033a3a31f606037463700469707636066567" +
				"72657373057765622d31026831"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(appendEvent(nil, &tt.ev)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
		b, _ := hex.DecodeString(tt.want)
		ev, err := decodeEvent(b)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		x, _ := json.Marshal(&ev)
		y, _ := json.Marshal(&tt.ev)
		if !bytes.Equal(x, y) {
			t.Errorf("%s decodes as\n%s\nwant\n%s", tt.name, x, y)
		}
	}
}
