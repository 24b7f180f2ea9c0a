package ioc

import (
	"errors"
	"strings"
	"testing"
)

const hashA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestParseCSV(t *testing.T) {
	in := "type,value,severity,note\n" +
		"# a comment\n" +
		"sha256," + strings.ToUpper(hashA) + ",high,dropper seen at ACME\n" +
		"\n" +
		"ip,::ffff:203.0.113.7,,\n" +
		"cidr, 198.51.100.77/24 ,critical,\"C2 range, per the vendor\"\n" +
		"path,/tmp/.x/xmrig,low\n" +
		"filename,xmrig\n"
	got, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Indicator{
		{TypeSHA256, hashA, "high", "dropper seen at ACME"},
		{TypeIP, "203.0.113.7", "medium", ""},
		{TypeCIDR, "198.51.100.0/24", "critical", "C2 range, per the vendor"},
		{TypePath, "/tmp/.x/xmrig", "low", ""},
		{TypeFilename, "xmrig", "medium", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d indicators %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("indicator %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseCSVRefusesBadLinesByNumber(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
		reason   string
	}{
		{"header", "sha256," + hashA + ",high,x\n", 1, "header"},
		{"long header", "type,value,severity,note,extra\nip,10.0.0.1\n", 1, "header"},
		{"short header", "type\nip,10.0.0.1\n", 1, "header"},
		{"short hash", "type,value,severity,note\nsha256,abc,high,\n", 2, "want 64 hex digits"},
		{"not hex", "type,value,severity,note\nsha256," + strings.Repeat("z", 64) + ",high,\n", 2, "not hex"},
		{"unknown type", "type,value,severity,note\nip,10.0.0.1\nurl,http://x,high,\n", 3, `unknown type "url"`},
		{"md5", "type,value,severity,note\n\n\nmd5,d41d8cd98f00b204e9800998ecf8427e,high,\n", 4, "only SHA-256"},
		{"domain", "type,value,severity,note\ndomain,evil.example,high,\n", 2, "domain names"},
		{"severity", "type,value,severity,note\nip,10.0.0.1,urgent,\n", 2, `severity "urgent"`},
		{"bad ip", "type,value,severity,note\nip,10.0.0.300,,\n", 2, "not an IPv4 or IPv6 address"},
		{"bad cidr", "type,value,severity,note\ncidr,10.0.0.0/33,,\n", 2, "not a prefix"},
		{"relative path", "type,value,severity,note\npath,tmp/x,,\n", 2, "not absolute"},
		{"filename with slash", "type,value,severity,note\nfilename,a/b,,\n", 2, "path separator"},
		{"columns", "type,value,severity,note\nip,10.0.0.1,high,note,extra\n", 2, "5 columns"},
		{"duplicate", "type,value,severity,note\nip,10.0.0.1\nip,::ffff:10.0.0.1\n", 3, "already on line 2"},
		{"empty value", "type,value,severity,note\nip,,high,\n", 2, "empty value"},
		{"quote", "type,value,severity,note\nip,\"10.0.0.1,high\n", 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCSV([]byte(tc.in))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("ParseCSV = %+v, %v; want an *Error", got, err)
			}
			p := pe.Problems[0]
			if p.Line != tc.line || !strings.Contains(p.Reason, tc.reason) {
				t.Errorf("problem %q on line %d, want %q on line %d", p.Reason, p.Line, tc.reason, tc.line)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Errorf("error %q does not name the line", err)
			}
		})
	}
}

func TestParseCSVListsEveryProblem(t *testing.T) {
	_, err := ParseCSV([]byte("type,value,severity,note\nip,1.2.3.4\nip,x\nsha256,y\nip,5.6.7.8\n"))
	var pe *Error
	if !errors.As(err, &pe) || len(pe.Problems) != 2 || pe.Problems[0].Line != 3 || pe.Problems[1].Line != 4 {
		t.Fatalf("err = %v, want problems on lines 3 and 4", err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "type,value,severity,note\n", "   \n", `{"type":"bundle","objects":[]}`} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) took an empty set", in)
		}
	}
}

const bundle = `{
  "type": "bundle",
  "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
  "objects": [
    {"type": "identity", "spec_version": "2.1", "id": "identity--1", "name": "ACME CERT"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--a1",
     "name": "Dropper", "description": "Seen in the March campaign\nmore prose",
     "pattern": "[file:hashes.'SHA-256' = '` + hashA + `']", "pattern_type": "stix",
     "x_cordon_severity": "critical"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--a2", "name": "C2",
     "pattern": "[ipv4-addr:value = '203.0.113.0/24']", "pattern_type": "stix"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--a3",
     "pattern": "[ipv6-addr:value = '2001:db8::1']", "pattern_type": "stix"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--a4", "name": "miner",
     "pattern": "[file:name = 'xmrig']", "pattern_type": "stix"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--a5",
     "pattern": "[file:name = '/tmp/it\\'s']", "pattern_type": "stix"}
  ]
}`

func TestParseSTIX(t *testing.T) {
	got, err := Parse([]byte(bundle))
	if err != nil {
		t.Fatal(err)
	}
	want := []Indicator{
		{TypeSHA256, hashA, "critical", "Dropper: Seen in the March campaign"},
		{TypeCIDR, "203.0.113.0/24", "medium", "C2"},
		{TypeIP, "2001:db8::1", "medium", ""},
		{TypeFilename, "xmrig", "medium", "miner"},
		{TypePath, "/tmp/it's", "medium", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("indicator %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseSTIXRefusesNamingTheObject(t *testing.T) {
	for _, tc := range []struct {
		name, pattern, reason string
	}{
		{"domain", "[domain-name:value = 'evil.example']", "domain names"},
		{"url", "[url:value = 'http://evil.example/']", "url:value is not matched"},
		{"md5", "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']", "is not matched"},
		{"or", "[ipv4-addr:value = '10.0.0.1' OR ipv4-addr:value = '10.0.0.2']", "want one comparison"},
		{"bad hash", "[file:hashes.'SHA-256' = 'abc']", "want 64 hex digits"},
		{"bad addr", "[ipv4-addr:value = 'nope']", "not an IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := `{"type":"bundle","objects":[
			  {"type":"indicator","id":"indicator--ok","pattern":"[ipv4-addr:value = '10.9.9.9']","pattern_type":"stix"},
			  {"type":"indicator","id":"indicator--bad-1","pattern":` + quote(tc.pattern) + `,"pattern_type":"stix"}]}`
			_, err := ParseSTIX([]byte(in))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("ParseSTIX = %v, want an *Error", err)
			}
			p := pe.Problems[0]
			if p.Object != "indicator--bad-1" || !strings.Contains(p.Reason, tc.reason) {
				t.Errorf("problem %q on %q, want %q on indicator--bad-1", p.Reason, p.Object, tc.reason)
			}
			if !strings.Contains(err.Error(), "indicator--bad-1") {
				t.Errorf("error %q does not name the object", err)
			}
		})
	}
}

func TestParseSTIXRefusesOtherDocuments(t *testing.T) {
	for _, in := range []string{`{"type":"indicator"}`, `{"type":"bundle","objects":[1]}`, `{`, `{"type":"bundle","objects":[{"type":"indicator","id":"indicator--x","pattern":"[file:name = 'x']","pattern_type":"yara"}]}`} {
		if _, err := ParseSTIX([]byte(in)); err == nil {
			t.Errorf("ParseSTIX(%s) took it", in)
		}
	}
}

func TestParseRefusesLargeSets(t *testing.T) {
	if _, err := Parse(make([]byte, MaxBytes+1)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("Parse of %d bytes = %v", MaxBytes+1, err)
	}
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
