package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	type result struct {
		Pos    []string
		Reason string
		Wait   bool
		PID    int
		Tags   string
		API    string
	}
	tests := []struct {
		name string
		args []string
		want result
		err  string
	}{
		{name: "flag after positional", args: []string{"a1", "--reason", "x"}, want: result{Pos: []string{"a1"}, Reason: "x"}},
		{name: "flag before positional", args: []string{"--reason=x", "a1"}, want: result{Pos: []string{"a1"}, Reason: "x"}},
		{name: "single dash", args: []string{"-reason", "x y", "a1", "-wait"}, want: result{Pos: []string{"a1"}, Reason: "x y", Wait: true}},
		{name: "bool then positional", args: []string{"--wait", "a1", "--pid", "7"}, want: result{Pos: []string{"a1"}, Wait: true, PID: 7}},
		{name: "bool with value", args: []string{"--wait=false", "a1"}, want: result{Pos: []string{"a1"}}},
		{name: "value that looks like a flag", args: []string{"a1", "--reason", "--wait"}, want: result{Pos: []string{"a1"}, Reason: "--wait"}},
		{name: "repeated tags", args: []string{"--tag", "a=b", "x", "--tag=c=d=e", "y"}, want: result{Pos: []string{"x", "y"}, Tags: "a=b,c=d=e"}},
		{name: "global flag anywhere", args: []string{"a1", "--api", "http://h:1"}, want: result{Pos: []string{"a1"}, API: "http://h:1"}},
		{name: "double dash ends flags", args: []string{"--wait", "--", "--reason", "-x"}, want: result{Pos: []string{"--reason", "-x"}, Wait: true}},
		{name: "lone dash is positional", args: []string{"-"}, want: result{Pos: []string{"-"}}},
		{name: "no args", args: nil, want: result{}},
		{name: "unknown flag", args: []string{"a1", "--nope"}, err: "flag provided but not defined: --nope"},
		{name: "unknown flag with value", args: []string{"--nope=1"}, err: "flag provided but not defined: --nope"},
		{name: "missing value", args: []string{"a1", "--reason"}, err: "flag needs an argument: --reason"},
		{name: "bad int", args: []string{"--pid", "abc"}, err: `invalid value "abc" for flag --pid`},
		{name: "bad tag", args: []string{"--tag", "=v"}, err: `invalid value "=v" for flag --tag: want key=value`},
		{name: "duplicate tag", args: []string{"--tag", "a=1", "--tag", "a=2"}, err: `tag "a" given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, g := newFlagSet("test")
			reason := fs.String("reason", "", "")
			wait := fs.Bool("wait", false, "")
			pid := fs.Int("pid", 0, "")
			tags := tagsFlag{}
			fs.Var(tags, "tag", "")
			pos, err := parseInterspersed(fs, tt.args)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := result{Pos: pos, Reason: *reason, Wait: *wait, PID: *pid, Tags: tags.String(), API: g.api}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseInterspersedHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"a1", "--help"}} {
		fs, _ := newFlagSet("test")
		if _, err := parseInterspersed(fs, args); !errors.Is(err, errHelp) {
			t.Errorf("%v: error %v, want errHelp", args, err)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		args  []string
		words []string
		rest  []string
		err   string
	}{
		{args: []string{"agents", "--json"}, words: []string{"agents"}, rest: []string{"--json"}},
		{args: []string{"--api", "http://h:1", "agents", "--json"}, words: []string{"agents"}, rest: []string{"--api", "http://h:1", "--json"}},
		{args: []string{"--token=k", "--json", "incidents"}, words: []string{"incidents"}, rest: []string{"--token=k", "--json"}},
		{args: []string{"incident", "show", "i1"}, words: []string{"incident", "show"}, rest: []string{"i1"}},
		{args: []string{"incident", "--json", "show", "i1"}, words: []string{"incident", "show"}, rest: []string{"--json", "i1"}},
		{args: []string{"isolate", "a1", "--reason", "x"}, words: []string{"isolate"}, rest: []string{"a1", "--reason", "x"}},
		{args: []string{"help", "incident", "update"}, words: []string{"help"}, rest: []string{"incident", "update"}},
		{args: []string{"incident"}, words: []string{"incident"}},
		// "audit" is a command and the group of "audit verify".
		{args: []string{"audit", "--actor", "bob"}, words: []string{"audit"}, rest: []string{"--actor", "bob"}},
		{args: []string{"audit", "verify", "--json"}, words: []string{"audit", "verify"}, rest: []string{"--json"}},
		{args: []string{"audit"}, words: []string{"audit"}},
		{args: []string{"--", "agents"}, words: []string{"agents"}},
		{args: []string{"--help"}, rest: []string{"--help"}},
		{args: nil},
		{args: []string{"--api"}, err: "flag needs an argument: --api"},
	}
	for _, tt := range tests {
		words, rest, err := splitCommand(tt.args)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: error %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if len(words) == 0 {
			words = nil
		}
		if len(rest) == 0 {
			rest = nil
		}
		if !reflect.DeepEqual(words, tt.words) || !reflect.DeepEqual(rest, tt.rest) {
			t.Errorf("%q: words %q rest %q, want %q %q", tt.args, words, rest, tt.words, tt.rest)
		}
	}
}

// TestUsageOfEveryCommand checks that every command has a usage that
// names it and that "help COMMAND" and "COMMAND --help" agree.
func TestUsageOfEveryCommand(t *testing.T) {
	f := newFakeAPI(t)
	for _, c := range commands {
		args := append(strings.Fields(c.name), "--help")
		code, stdout, _ := f.runCLI(nil, args...)
		if code != 0 || !strings.HasPrefix(stdout, "usage: cordonctl "+c.name) {
			t.Errorf("%s --help: exit %d, stdout:\n%s", c.name, code, stdout)
		}
		code, help, _ := f.runCLI(nil, append([]string{"help"}, strings.Fields(c.name)...)...)
		if code != 0 || help != stdout {
			t.Errorf("help %s: exit %d, stdout differs from --help:\n%s", c.name, code, help)
		}
	}
	if reqs := f.requests(); len(reqs) != 0 {
		t.Errorf("help made requests:\n%s", fmtReqs(reqs))
	}
}
