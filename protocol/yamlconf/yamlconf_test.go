package yamlconf

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type sample struct {
	Name    string        `yaml:"name"`
	Level   int           `yaml:"level"`
	On      bool          `yaml:"on"`
	Every   time.Duration `yaml:"every"`
	Paths   []string      `yaml:"paths"`
	Targets map[string]struct {
		Ack time.Duration `yaml:"ack"`
	} `yaml:"targets"`
	Nested struct {
		Mode string `yaml:"mode"`
	} `yaml:"nested"`
	Items []struct {
		ID string `yaml:"id"`
	} `yaml:"items"`
	Raw yaml.Node `yaml:"raw"`
}

func TestDecodeKeepsDefaults(t *testing.T) {
	s := sample{Name: "default", Level: 3, On: true}
	doc, err := Decode("c.yaml", []byte("level: 5\nnested:\n  mode: x\nname:\n"), &s)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "default" || s.Level != 5 || !s.On || s.Nested.Mode != "x" {
		t.Errorf("decoded %+v", s)
	}
	if doc.Line("nested.mode") != 3 || doc.Line("nested.mode.deeper") != 3 || doc.Line("paths") != 0 || !doc.Has("level") || doc.Has("on") {
		t.Errorf("lines: %v", doc.lines)
	}
	if _, err := Decode("c.yaml", nil, &s); err != nil {
		t.Errorf("empty file: %v", err)
	}
	if _, err := Decode("c.yaml", []byte("# only comments\n"), &s); err != nil {
		t.Errorf("comments only: %v", err)
	}
}

func TestDecodeMistakes(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		line       int
		key, msg   string
	}{
		{"unknown key", "name: a\nlevle: 2\n", 2, "levle", `unknown key; did you mean "level"?`},
		{"unknown nested key", "nested:\n  mode: a\n  speed: 2\n", 3, "nested.speed", "unknown key; known keys: mode"},
		{"unknown key in list item", "items:\n  - id: a\n  - id: b\n    di: c\n", 4, "items[1].di", "unknown key"},
		{"bad duration", "every: soon\n", 1, "every", `"soon" is not a duration`},
		{"bad number", "name: a\nlevel: three\n", 2, "level", `"three" is not a whole number`},
		{"bad bool", "on: maybe\n", 1, "on", `"maybe" is not true or false`},
		{"list for scalar", "name: [a, b]\n", 1, "name", "want a text value, got a list"},
		{"scalar for list", "paths: /etc\n", 1, "paths", `want a list, got "/etc"`},
		{"scalar for mapping", "nested: fast\n", 1, "nested", "want a mapping of keys"},
		{"bad map value", "targets:\n  P1:\n    ack: 5m\n  P2:\n    ack: later\n", 5, "targets.P2.ack", "not a duration"},
		{"repeated key", "name: a\nlevel: 1\nname: b\n", 3, "name", "repeated (first at line 1)"},
		{"not a mapping", "- a\n- b\n", 1, "", "want a mapping"},
		{"syntax", "name: a\n  level: [\n", 2, "", "not valid YAML"},
		{"two documents", "name: a\n---\nname: b\n", 2, "", "second YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s sample
			_, err := Decode("c.yaml", []byte(tc.yaml), &s)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want an *Error", err)
			}
			if e.File != "c.yaml" || e.Line != tc.line || e.Key != tc.key || !strings.Contains(e.Err.Error(), tc.msg) {
				t.Errorf("got file %q line %d key %q: %v; want line %d key %q containing %q", e.File, e.Line, e.Key, e.Err, tc.line, tc.key, tc.msg)
			}
		})
	}
}

func TestDocErrorf(t *testing.T) {
	var s sample
	doc, err := Decode("c.yaml", []byte("paths:\n  - /a\n  - b\n"), &s)
	if err != nil {
		t.Fatal(err)
	}
	got := doc.Errorf("paths[1]", "%q is not absolute", "b").Error()
	if got != `c.yaml: line 3: paths[1]: "b" is not absolute` {
		t.Errorf("got %s", got)
	}
	if got := doc.Errorf("level", "missing").Error(); got != "c.yaml: level: missing" {
		t.Errorf("absent key: %s", got)
	}
}

func TestDecodeAliasBomb(t *testing.T) {
	y := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g"} {
		y += n + ": &" + n + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = n
	}
	var s struct {
		A, B, C, D, E, F, G [][][][][][][]string
	}
	if _, err := Decode("c.yaml", []byte(y), &s); err == nil {
		t.Fatal("a million values from aliases were accepted")
	}
}

// FuzzDecode: no input makes decoding panic, and every refusal names
// the file.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("name: a\nlevel: 2\nitems:\n  - id: x\n"))
	f.Add([]byte("targets: {P1: {ack: 5m}}\nraw: {any: [1, 2]}\n"))
	f.Add([]byte("a: &x [1]\npaths: *x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s sample
		_, err := Decode("f.yaml", b, &s)
		var e *Error
		if err != nil && (!errors.As(err, &e) || e.File != "f.yaml") {
			t.Fatalf("error %v is not an *Error naming the file", err)
		}
	})
}
