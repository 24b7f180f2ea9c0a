package ecs

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// event builds an Event from fuzz input: flags choose which groups and
// optional fields are set, s fills every string.
func event(flags uint16, s string, n int64, at int64) *Event {
	on := func(bit int) bool { return flags&(1<<bit) != 0 }
	ts := time.Unix(0, at).UTC()
	if on(12) {
		ts = ts.In(time.FixedZone("x", int(n%86400)))
	}
	e := &Event{Timestamp: ts, Event: Meta{Category: s, Type: s + "t"}}
	if on(0) {
		e.Event.Action, e.Event.Module = s, ""
	}
	if on(1) {
		code := int(n)
		p := &Process{PID: int(n), EntityID: s, Executable: s, CommandLine: s + " " + s, Args: []string{s, "", s}}
		if on(2) {
			p.Name, p.WorkingDirectory, p.Start = s, s, ts
			p.User = User{Name: s}
			p.ExitCode = &code
			p.Parent = &Parent{PID: 1, Executable: s}
			p.Ancestry = []Parent{{PID: 2, Name: s}, {EntityID: s, CommandLine: s}}
		}
		e.Process = p
	}
	if on(3) {
		size := n
		f := &File{Path: s, Type: "file", Mode: s}
		if on(4) {
			f.Name, f.Directory, f.Size, f.Hash, f.UID, f.GID, f.Owner = s, s, &size, &Hash{SHA256: s}, s, "0", s
		}
		e.File = f
	}
	if on(5) {
		e.Source = &Endpoint{IP: s}
	}
	if on(6) {
		e.Destination = &Endpoint{Port: int(n % 65536)}
	}
	if on(7) {
		e.Network = &Network{Type: s, Direction: s}
	}
	if on(8) {
		e.Host = &Host{ID: s}
	}
	if on(9) {
		e.Process = &Process{User: User{ID: s}}
	}
	if on(10) {
		e.File = &File{Hash: &Hash{}}
		e.Source = &Endpoint{}
	}
	if on(11) {
		// The fields the groups above leave empty.
		e.Event.Module = s
		e.Source = &Endpoint{IP: s, Port: int(n % 65536)}
		e.Destination = &Endpoint{IP: s}
		e.Network = &Network{Transport: s}
		e.Host = &Host{Hostname: s, ID: s}
		if e.Process != nil {
			e.Process.User = User{ID: s, Name: s}
		}
	}
	return e
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 21, 0, 0, 123456789, time.UTC).UnixNano()
	for _, s := range []string{
		"", "/usr/bin/true", `a "quoted" \ path`, "tab\tnl\ncr\rbs\bff\f", "\x00\x01\x1f\x7f",
		"<script>&amp;</script>", "caf\u00e9 \u2028\u2029 \U0001F600", "bad \xff\xfe utf8 \xe2\x82", "日本語",
	} {
		for _, flags := range []uint16{0, 0xffff, 0x0002, 0x0006, 0x0018, 0x01e0, 0x0200, 0x0400, 0x1001} {
			compare(t, event(flags, s, -42, at))
		}
	}
	// encoding/json refuses times past the year 9999; so does AppendJSON.
	late := event(0xffff, "x", 1, at)
	late.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := late.AppendJSON(nil); err == nil {
		t.Error("AppendJSON wrote a time in the year 10000")
	}
	compare(t, late)
}

func compare(t *testing.T, e *Event) {
	t.Helper()
	want, werr := json.Marshal(e)
	got, gerr := e.AppendJSON(nil)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("encoding/json error %v, AppendJSON error %v", werr, gerr)
	}
	if werr == nil && string(got) != string(want) {
		t.Fatalf("AppendJSON:\n%s\nencoding/json:\n%s", got, want)
	}
	// An Encoder writes the same, the first time and again from its memo.
	var enc Encoder
	for i := 0; i < 2 && werr == nil; i++ {
		if got, err := enc.Append(nil, e); err != nil || string(got) != string(want) {
			t.Fatalf("Encoder.Append, time %d: %v\n%s\nencoding/json:\n%s", i+1, err, got, want)
		}
	}
}

func TestEncoderReusesLineage(t *testing.T) {
	chain := func(n int) []Parent {
		var out []Parent
		for i := 0; i < n; i++ {
			out = append(out, Parent{PID: 100 + i, EntityID: fmt.Sprintf("e-%d-%d", n, i), Executable: "/bin/sh",
				Name: "sh", CommandLine: fmt.Sprintf("sh -c 'level %d of %d <&>'", i, n)})
		}
		return out
	}
	ev := func(parent *Parent, ancestry []Parent) *Event {
		return &Event{Timestamp: time.Unix(1764709200, 0).UTC(), Event: Meta{Category: CategoryProcess, Type: TypeStart},
			Process: &Process{PID: 7, Executable: "/bin/true", Parent: parent, Ancestry: ancestry}}
	}
	var enc Encoder
	check := func(what string, e *Event) {
		t.Helper()
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := enc.Append(nil, e); err != nil || string(got) != string(want) {
			t.Errorf("%s: %v\n%s\nwant\n%s", what, err, got, want)
		}
	}
	shared := chain(4)
	for i := 0; i < 3; i++ {
		check("siblings sharing a lineage", ev(&shared[0], shared[1:]))
	}
	// The caller changes a lineage it had written: the memo kept its
	// own copy, so the change is written.
	shared[2].CommandLine = "changed in place"
	check("an ancestor changed in place", ev(&shared[0], shared[1:]))
	shared[0].Executable = "/usr/bin/python3"
	check("the parent changed in place", ev(&shared[0], shared[1:]))
	// More lineages interleaving than the Encoder keeps.
	for round := 0; round < 2; round++ {
		for n := 1; n <= lineageMemos+2; n++ {
			c := chain(n)
			check(fmt.Sprintf("lineage %d, round %d", n, round), ev(&c[0], c[1:]))
		}
	}
	check("a parent without ancestry", ev(&shared[0], nil))
	check("ancestry without a parent", ev(nil, shared[1:]))
	check("neither", ev(nil, nil))
	check("the shared lineage again", ev(&shared[0], shared[1:]))
}

func FuzzAppendJSON(f *testing.F) {
	f.Add(uint16(0xffff), "/bin/sh -c 'echo <x> & y'", int64(1234), int64(1764709200000000000))
	f.Add(uint16(0), "", int64(0), int64(0))
	f.Add(uint16(0x1ffe), "\xff\u2028\"\\\n", int64(-1), int64(-9223372036854775808))
	f.Fuzz(func(t *testing.T, flags uint16, s string, n, at int64) {
		compare(t, event(flags, s, n, at))
	})
}

func BenchmarkEventJSON(b *testing.B) {
	code := 0
	e := &Event{
		Timestamp: time.Now().UTC(),
		Event:     Meta{Category: CategoryProcess, Type: TypeStart, Action: "exec", Module: "ebpf"},
		Process: &Process{PID: 4242, EntityID: "8c1f-4242-99", Executable: "/usr/bin/true", Name: "true",
			CommandLine: "/bin/true MARKER-123456", Args: []string{"/bin/true", "MARKER-123456"}, WorkingDirectory: "/root",
			Start: time.Now().UTC(), User: User{ID: "0", Name: "root"}, ExitCode: &code,
			Parent:   &Parent{PID: 4000, EntityID: "8c1f-4000-12", Executable: "/bin/sh", Name: "sh", CommandLine: "/bin/sh -c loop"},
			Ancestry: []Parent{{PID: 1, EntityID: "8c1f-1-1", Executable: "/sbin/init", Name: "init"}}},
		Host: &Host{Hostname: "vm", ID: "0123"},
	}
	// An exec storm's event: a shell loop's child, five levels below
	// init, the command lines of a test run above it.
	storm := *e
	sp := *e.Process
	sp.Parent = &Parent{PID: 4000, EntityID: "8c1f-4000-12", Executable: "/usr/bin/dash", Name: "dash",
		CommandLine: "/bin/sh -c i=0; trap 'echo $i; exit 0' TERM; while :; do /bin/true cordon-agentstorm-1764739200000000000-0-$i; i=$((i+1)); done"}
	sp.Ancestry = []Parent{
		{PID: 3990, EntityID: "8c1f-3990-11", Executable: "/tmp/go-build3141592653/b001/e2e.test", Name: "e2e.test",
			CommandLine: "/tmp/go-build3141592653/b001/e2e.test -test.paniconexit0 -test.timeout=10m0s -test.run=^$ -test.bench=AgentExecStorm -test.count=1"},
		{PID: 3900, EntityID: "8c1f-3900-10", Executable: "/usr/local/go/bin/go", Name: "go",
			CommandLine: "go test -run ^$ -bench AgentExecStorm -count 1 ."},
		{PID: 3000, EntityID: "8c1f-3000-9", Executable: "/usr/bin/bash", Name: "bash", CommandLine: "-bash"},
		{PID: 2990, EntityID: "8c1f-2990-8", Executable: "/usr/sbin/sshd", Name: "sshd", CommandLine: "sshd: root@pts/0"},
		{PID: 1, EntityID: "8c1f-1-1", Executable: "/usr/lib/systemd/systemd", Name: "systemd", CommandLine: "/sbin/init"},
	}
	storm.Process = &sp
	for _, ev := range []struct {
		name string
		e    *Event
	}{{"short", e}, {"storm", &storm}} {
		b.Run(ev.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(ev.e); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(ev.name+"/append", func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = ev.e.AppendJSON(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		// Siblings: each event's lineage is the last one's.
		b.Run(ev.name+"/encoder", func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			var enc Encoder
			for b.Loop() {
				var err error
				if buf, err = enc.Append(buf[:0], ev.e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
