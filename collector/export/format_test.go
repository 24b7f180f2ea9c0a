package export

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/golden/name, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n got: %s\nwant: %s", name, got, want)
	}
}

func indent(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func kinds(evs map[string]*Event) []string {
	var ks []string
	for k := range evs {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestGoldenFormats(t *testing.T) {
	evs := sampleEvents()
	for _, kind := range kinds(evs) {
		ev := evs[kind]
		t.Run(kind, func(t *testing.T) {
			for _, f := range []string{FormatOCSF, FormatECS} {
				b, err := body(f, ev)
				if err != nil {
					t.Fatal(err)
				}
				golden(t, f+"/"+kind+".json", indent(t, b))
			}
			golden(t, "cef/"+kind+".cef", []byte(cef(ev)+"\n"))

			if kind == KindIncidentOpened || kind == KindFinding {
				th := &thehive{cfg: &SinkConfig{}}
				b, err := json.Marshal(th.alert(ev))
				if err != nil {
					t.Fatal(err)
				}
				golden(t, "thehive/"+kind+".json", indent(t, b))
			}

			h := &hec{cfg: &SinkConfig{Format: FormatOCSF, Index: "security"}}
			b, err := h.envelope(ev)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "splunk_hec/"+kind+".json", indent(t, b))
		})
	}
}

func TestSyslogMessage(t *testing.T) {
	defer func(f func() time.Time) { unixNow = f }(unixNow)
	unixNow = func() time.Time { return t0.Add(2 * time.Second) }
	evs := sampleEvents()
	for _, format := range []string{FormatCEF, FormatOCSF} {
		s := &syslog{cfg: &SinkConfig{Format: format, Facility: DefaultFacility}, hostname: "collector-1"}
		var all bytes.Buffer
		for _, kind := range kinds(evs) {
			msg, err := s.message(evs[kind])
			if err != nil {
				t.Fatal(err)
			}
			all.Write(frame(msg))
			all.WriteByte('\n')
		}
		golden(t, "syslog/"+format+".txt", all.Bytes())
	}
}

func TestOCSFClasses(t *testing.T) {
	for kind, ev := range sampleEvents() {
		doc := ocsf(ev)
		class, act := doc["class_uid"].(int), doc["activity_id"].(int)
		if doc["type_uid"].(int) != class*100+act {
			t.Errorf("%s: type_uid %v is not class_uid*100+activity_id", kind, doc["type_uid"])
		}
		want, cat := 2005, 2
		switch {
		case kind == KindFinding:
			want = 2004
		case isCommand(kind):
			want, cat = 7001, 7
		}
		if class != want || doc["category_uid"] != cat {
			t.Errorf("%s: class %d category %v, want %d in 2", kind, class, doc["category_uid"], want)
		}
		for _, k := range []string{"metadata", "severity_id", "time"} {
			if _, ok := doc[k]; !ok {
				t.Errorf("%s: no %s", kind, k)
			}
		}
	}
}

func TestCEFEscaping(t *testing.T) {
	ev := sampleEvents()["finding"]
	ev.Finding.Rule.Name = `pipe | and back\slash`
	ev.Finding.Summary = "a=b\nc\\d"
	line := cef(ev)
	if !strings.Contains(line, `|pipe \| and back\\slash|`) {
		t.Errorf("header not escaped: %s", line)
	}
	if !strings.Contains(line, `msg=a\=b\nc\\d`) {
		t.Errorf("extension not escaped: %s", line)
	}
	if strings.ContainsAny(line, "\r\n") {
		t.Errorf("line break in %q", line)
	}
	if n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"); n != 7 {
		t.Errorf("%d unescaped pipes, want the 7 of the header", n)
	}
}

func TestObservables(t *testing.T) {
	o := sampleEvents()["incident.opened"].observables()
	want := Observables{
		Hashes:    []string{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		IPs:       []string{"192.0.2.10", "203.0.113.7"},
		Hostnames: []string{"web-01"},
		Users:     []string{"www-data"},
	}
	if !slices.Equal(o.Hashes, want.Hashes) || !slices.Equal(o.IPs, want.IPs) ||
		!slices.Equal(o.Hostnames, want.Hostnames) || !slices.Equal(o.Users, want.Users) {
		t.Errorf("observables %+v, want %+v", o, want)
	}
}
