package sigma

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// loadPack compiles the shipped rule pack from its source folder.
func loadPack(tb testing.TB) []*Rule {
	tb.Helper()
	var all []*Rule
	for _, dir := range []string{"sigma/linux", "cordon"} {
		res, err := LoadFS(os.DirFS("../rules"), dir)
		if err != nil {
			tb.Fatal(err)
		}
		rs, err := Compiled(res)
		if err != nil {
			tb.Fatal(err)
		}
		all = append(all, rs...)
	}
	return all
}

// benignStream is a deterministic stream of ordinary process starts,
// file writes and connections, the bulk of what a host produces.
func benignStream() []ecs.Event {
	cmds := []string{
		"/usr/bin/ls -la /home/alice/src", "/usr/bin/git status --porcelain", "/usr/bin/git log --oneline -n 20",
		"/usr/local/go/bin/go build ./...", "/usr/bin/grep -rn TODO internal/", "/usr/bin/ssh deploy@build-02 uptime",
		"/usr/bin/make test", "/usr/bin/vim cmd/main.go", "/usr/bin/less README.md", "/usr/bin/python3 manage.py runserver 0.0.0.0:8000",
		"/usr/bin/node /srv/app/server.js --port 3000", "/usr/bin/docker ps --format {{.Names}}", "/usr/sbin/nginx -g daemon off;",
		"/usr/bin/tar -czf /var/backups/home.tgz /home/alice/docs", "/usr/bin/rsync -a /srv/www/ backup:/srv/www/",
		"/usr/lib/postgresql/16/bin/postgres -D /var/lib/postgresql/16/main", "/usr/bin/sort -u names.txt",
		"/usr/bin/awk {print $1} access.log", "/usr/bin/sed -n 1,20p config.yaml", "/usr/bin/jq .items[] data.json",
		"/usr/bin/systemctl status nginx", "/usr/bin/journalctl -u nginx --since today", "/usr/bin/apt-get install -y jq",
		"/usr/bin/curl -fsSL -o release.tgz https://example.org/release.tgz", "/usr/bin/du -sh /var/lib/docker",
	}
	parents := []string{"/usr/bin/bash", "/usr/bin/zsh", "/usr/lib/systemd/systemd", "/usr/bin/make", "/usr/bin/sshd"}
	var out []ecs.Event
	for i := 0; i < 500; i++ {
		c := cmds[i%len(cmds)]
		exe, args, _ := strings.Cut(c, " ")
		cmd := exe[strings.LastIndexByte(exe, '/')+1:] + " " + args
		if i%3 == 0 {
			cmd += fmt.Sprintf(" --job %d", i)
		}
		p := parents[i%len(parents)]
		ev := ecs.Event{
			Event: ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart},
			Process: &ecs.Process{
				PID: 10000 + i, Executable: exe, Name: exe[strings.LastIndexByte(exe, '/')+1:], CommandLine: cmd,
				WorkingDirectory: "/home/alice/src/app", User: ecs.User{ID: "1000", Name: "alice"},
				Parent: &ecs.Parent{PID: 900 + i%7, Executable: p, CommandLine: p[strings.LastIndexByte(p, '/')+1:]},
			},
		}
		switch i % 10 {
		case 7:
			ev.Event = ecs.Meta{Category: ecs.CategoryFile, Type: ecs.TypeChange}
			ev.File = &ecs.File{Path: fmt.Sprintf("/home/alice/src/app/pkg/file%d.go", i), Mode: "0644"}
		case 9:
			ev.Event = ecs.Meta{Category: ecs.CategoryNetwork, Type: ecs.TypeConnection}
			ev.Destination = &ecs.Endpoint{IP: "203.0.113.10", Port: 443}
			ev.Network = &ecs.Network{Transport: "tcp", Direction: "egress"}
		}
		out = append(out, ev)
	}
	return out
}

func readTestEvents(tb testing.TB) []ecs.Event {
	files, _ := filepath.Glob("testdata/events/*.jsonl")
	var out []ecs.Event
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var ev ecs.Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				tb.Fatal(err)
			}
			out = append(out, ev)
		}
	}
	return out
}

// BenchmarkRuleSet measures events per second through the whole shipped
// pack in a detectors.Engine: "routed" is the Set as the agent runs it,
// "naive" evaluates every rule's condition on every event, without
// routing or the literal prefilter, as a baseline. "benign" is ordinary
// host activity; "attacks" is the golden events, where most events
// match and findings are built. events/cpu-s divides by the CPU time of
// the benchmark's thread, which on a busy machine is the per-core figure.
// Run it on one core:
//
//	go test -run '^$' -bench RuleSet -cpu 1 ./detectors/sigma
func BenchmarkRuleSet(b *testing.B) {
	rules := loadPack(b)
	streams := map[string][]ecs.Event{"benign": benignStream(), "attacks": readTestEvents(b)}
	for _, stream := range []string{"benign", "attacks"} {
		evs := streams[stream]
		for _, mode := range []string{"routed", "naive"} {
			b.Run(stream+"/"+mode, func(b *testing.B) {
				set := NewSet(rules, Options{License: "DRL-1.1"})
				if mode == "naive" {
					set = newNaiveSet(rules)
				}
				e := detectors.NewEngine()
				e.AddBatch(set.Batch())
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := threadCPU()
				for i := 0; i < b.N; i++ {
					e.Process(&evs[i%len(evs)])
				}
				cpu := threadCPU() - cpu0
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				if cpu > 0 {
					// On a shared machine the wall clock includes time
					// other processes held the core; this does not.
					b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
				}
			})
		}
	}
}

// TestPrefilterAgreesWithFullEvaluation checks, over the benchmark and
// golden streams, that the routed, prefiltered set finds exactly what
// full evaluation of the routed rules finds.
func TestPrefilterAgreesWithFullEvaluation(t *testing.T) {
	rules := loadPack(t)
	fast := NewSet(rules, Options{}).Detectors()
	slow := newNaiveSet(rules)
	evs := append(benignStream(), readTestEvents(t)...)
	for i := range evs {
		ev := &evs[i]
		r := eventRoute(ev)
		var want, got []string
		for j, d := range slow.Detectors() {
			if rules[j].route != r || r == routeNone {
				continue
			}
			if _, ok := d.Detect(ev); ok {
				want = append(want, rules[j].ID)
			}
		}
		for _, d := range fast {
			if f, ok := d.Detect(ev); ok {
				_ = f
				got = append(got, d.Rule().ID)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("event %d: prefiltered %v, full %v", i, got, want)
		}
	}
}
