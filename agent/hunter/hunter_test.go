package hunter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/agent/history"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

type fakeState struct{ procs, socks []ecs.Event }

func (f fakeState) Processes(context.Context) ([]ecs.Event, error) { return f.procs, nil }
func (f fakeState) Sockets(context.Context) ([]ecs.Event, error)   { return f.socks, nil }

func newHunter(t *testing.T, evs ...ecs.Event) *Hunter {
	t.Helper()
	h, err := history.Open(t.TempDir(), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	for _, ev := range evs {
		h.Add(ev)
	}
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	return New(Config{History: h, State: fakeState{
		procs: []ecs.Event{{Timestamp: time.Now(), Event: ecs.Meta{Category: "process", Type: "info"}, Process: &ecs.Process{PID: 77, Executable: "/tmp/.x/xmrig"}}},
		socks: []ecs.Event{{Timestamp: time.Now(), Event: ecs.Meta{Category: "network", Type: "info", Action: "listening"}, Destination: &ecs.Endpoint{IP: "0.0.0.0", Port: 4444}}},
	}})
}

func TestHuntHistoryAndState(t *testing.T) {
	t0 := time.Now().Add(-time.Hour).UTC()
	h := newHunter(t,
		ecs.Event{Timestamp: t0, Event: ecs.Meta{Category: "process", Type: "start"}, Process: &ecs.Process{PID: 5, Executable: "/tmp/.x/xmrig"}},
		ecs.Event{Timestamp: t0.Add(time.Minute), Event: ecs.Meta{Category: "process", Type: "start"}, Process: &ecs.Process{PID: 6, Executable: "/usr/bin/ls"}},
	)
	res := h.Hunt(context.Background(), &protocol.HuntRequest{Id: "h1", Query: `process.executable endswith "/xmrig"`})
	if res.GetStatus() != "answered" || len(res.GetMatches()) != 2 {
		t.Fatalf("result %s (%s), %d matches", res.GetStatus(), res.GetReason(), len(res.GetMatches()))
	}
	if m := res.GetMatches(); m[0].GetSource() != SourceHistory || m[0].GetTimeUnixNano() != t0.UnixNano() || m[1].GetSource() != SourceProcess {
		t.Fatalf("matches %v", m)
	}
	res = h.Hunt(context.Background(), &protocol.HuntRequest{Id: "h2", Query: `destination.port == 4444 and event.action == "listening"`})
	if len(res.GetMatches()) != 1 || res.GetMatches()[0].GetSource() != SourceSocket {
		t.Fatalf("socket hunt: %v", res.GetMatches())
	}
	// The history before since is not read.
	res = h.Hunt(context.Background(), &protocol.HuntRequest{Id: "h3", Query: `process.pid == 5`, SinceUnixNano: t0.Add(time.Second).UnixNano()})
	if len(res.GetMatches()) != 0 {
		t.Fatalf("since ignored: %v", res.GetMatches())
	}
}

func TestHuntBudgets(t *testing.T) {
	var evs []ecs.Event
	for i := range 50 {
		evs = append(evs, ecs.Event{Timestamp: time.Now().Add(-time.Duration(i) * time.Second), Event: ecs.Meta{Category: "process", Type: "start"}, Process: &ecs.Process{PID: 100 + i, Executable: "/usr/bin/cat"}})
	}
	h := newHunter(t, evs...)
	res := h.Hunt(context.Background(), &protocol.HuntRequest{Id: "h", Query: `process.executable == "/usr/bin/cat"`, MaxMatches: 10})
	if res.GetStatus() != "partial" || len(res.GetMatches()) != 10 || !strings.Contains(res.GetReason(), "10 matches") {
		t.Fatalf("size budget: %s (%s), %d matches", res.GetStatus(), res.GetReason(), len(res.GetMatches()))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res = h.Hunt(ctx, &protocol.HuntRequest{Id: "h", Query: `process.pid > 0`})
	if res.GetStatus() != "partial" {
		t.Fatalf("a cancelled hunt is %s", res.GetStatus())
	}
	res = h.Hunt(context.Background(), &protocol.HuntRequest{Id: "h", Query: `process.pid >`})
	if res.GetStatus() != "failed" || !strings.Contains(res.GetReason(), "position") {
		t.Fatalf("bad query: %s %s", res.GetStatus(), res.GetReason())
	}
}

func TestHuntFilesOnDisk(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "deep"), 0o755)
	body := []byte("marker")
	os.WriteFile(filepath.Join(dir, "a", "deep", "m.bin"), body, 0o644)
	os.WriteFile(filepath.Join(dir, "a", "other.bin"), []byte("other"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.bin"), body, 0o644) // outside the prefix
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	h := newHunter(t)
	res := h.Hunt(context.Background(), &protocol.HuntRequest{Id: "f", Query: `file.path startswith "` + dir + `/a" and file.hash.sha256 == "` + hash + `"`})
	if res.GetStatus() != "answered" || len(res.GetMatches()) != 1 {
		t.Fatalf("file hunt: %s (%s), %d matches", res.GetStatus(), res.GetReason(), len(res.GetMatches()))
	}
	var ev ecs.Event
	json.Unmarshal(res.GetMatches()[0].GetEventJson(), &ev)
	if ev.File.Path != filepath.Join(dir, "a", "deep", "m.bin") || res.GetMatches()[0].GetSource() != SourceFile {
		t.Fatalf("matched %+v", ev.File)
	}
	// An exact path is read without walking its folder.
	res = h.Hunt(context.Background(), &protocol.HuntRequest{Id: "f2", Query: `file.path == "` + filepath.Join(dir, "b.bin") + `"`})
	if len(res.GetMatches()) != 1 {
		t.Fatalf("exact path: %d matches", len(res.GetMatches()))
	}
}
