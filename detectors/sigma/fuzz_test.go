package sigma

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

// FuzzParse feeds arbitrary YAML to the rule compiler: it must return a
// rule or an *Error, never panic, and a compiled rule must evaluate any
// event without panicking.
func FuzzParse(f *testing.F) {
	seeds := 0
	_ = fs.WalkDir(os.DirFS("../rules"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !IsRuleFile(p) || seeds >= 40 {
			return nil
		}
		if b, err := fs.ReadFile(os.DirFS("../rules"), p); err == nil {
			f.Add(b)
			seeds++
		}
		return nil
	})
	f.Add([]byte("title: t\ndetection:\n  k:\n    - 'a*b?c\\\\*'\n  s|re: x\n  condition: k or not (1 of s*)\n"))
	f.Add([]byte("title: t\ndetection:\n  s:\n    CommandLine|base64offset|contains: abc\n    DestinationIp|cidr: 10.0.0.0/8\n  condition: all of them | count() > 1\n"))
	events := []*struct{ exe, cmd string }{{"/bin/sh", "sh -c 'A*B?c'"}, {"/usr/bin/\u212a", "\xff\xfe"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := Parse("fuzz.yml", data)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		set := NewSet(rules, Options{})
		naive := newNaiveSet(rules)
		for _, e := range events {
			ev := proc(e.exe, e.cmd)
			for _, s := range []*Set{set, naive} {
				for _, d := range s.Detectors() {
					d.Detect(ev)
				}
			}
			ev2 := fileEvent(e.exe, e.cmd, "4755")
			for _, d := range set.Detectors() {
				d.Detect(ev2)
			}
		}
	})
}

// FuzzCondition feeds arbitrary conditions to the condition parser over
// a fixed set of searches; a condition that parses must evaluate.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{
		"selection", "all of selection_*", "1 of them", "a and not (b or c)",
		"selection and not 1 of filter_main_* and not 1 of filter_optional_*",
		"(selection_netcat and not filter_main_netcat_listen_flag) or selection_network_scanning_tools",
		"selection | count() by host > 5", "not not not a", "((((a))))", "all of them and 1 of x",
	} {
		f.Add(s)
	}
	yes := &fieldNode{f: fImage, ms: []matcher{&strMatcher{op: opPrefix, pat: ""}}}
	no := &notNode{yes}
	searches := map[string]node{"a": yes, "b": no, "c": yes, "selection": yes, "selection_1": no, "filter_main_x": no, "x": yes}
	names := []string{"a", "b", "c", "selection", "selection_1", "filter_main_x", "x"}
	f.Fuzz(func(t *testing.T, cond string) {
		n, err := parseCondition(cond, searches, names)
		if err != nil {
			return
		}
		var c evalCtx
		c.reset(proc("/bin/sh", "sh"), routeProcess)
		n.eval(&c)
	})
}
