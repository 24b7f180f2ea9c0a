package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// globals are the flags every command accepts.
type globals struct {
	api   string
	token string
}

// errHelp is returned by parseInterspersed for -h and --help.
var errHelp = flag.ErrHelp

// newFlagSet returns a silent flag set for one command, with the global
// flags already defined.
func newFlagSet(name string) (*flag.FlagSet, *globals) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	g := &globals{}
	fs.StringVar(&g.api, "api", "", "collector API `URL` (default $CORDON_API, else "+defaultAPI+")")
	fs.StringVar(&g.token, "token", "", "API `KEY` (default $CORDON_TOKEN)")
	return fs, g
}

type boolFlag interface{ IsBoolFlag() bool }

// parseInterspersed parses args with fs, allowing flags anywhere among the
// positional arguments: "isolate AGENT --reason x" and "--reason x isolate
// AGENT" parse alike. Flags take "--name=value" or "--name value" (bool
// flags only the first form); everything after "--" is positional. It
// returns the positional arguments in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		name, hasValue, ok := flagName(a)
		if !ok {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		f := fs.Lookup(name)
		if f == nil || hasValue {
			continue // unknown flags are reported by fs.Parse
		}
		if b, ok := f.Value.(boolFlag); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 >= len(args) {
			return nil, fmt.Errorf("flag needs an argument: --%s", name)
		}
		i++
		flags = append(flags, args[i])
	}
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		msg := strings.Replace(err.Error(), "not defined: -", "not defined: --", 1)
		msg = strings.Replace(msg, "for flag -", "for flag --", 1)
		return nil, errors.New(msg)
	}
	return positional, nil
}

// checkPositional checks that args holds exactly the positional arguments
// cmd wants.
func checkPositional(cmd *command, args []string) error {
	if len(args) < len(cmd.positional) {
		return fmt.Errorf("missing %s", cmd.positional[len(args)])
	}
	if len(args) > len(cmd.positional) {
		return fmt.Errorf("unexpected argument %q", args[len(cmd.positional)])
	}
	for i, a := range args {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("empty %s", cmd.positional[i])
		}
	}
	return nil
}

// printUsage writes the usage line and the flags of one command.
func printUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: cordonctl %s", cmd.name)
	if cmd.synopsis != "" {
		fmt.Fprintf(w, " %s", cmd.synopsis)
	}
	fmt.Fprintf(w, "\n\n%s.\n", upperFirst(cmd.summary))

	type row struct{ left, usage string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "api" || f.Name == "token" {
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if arg != "" {
			left += " " + arg
		}
		def := f.DefValue
		if g, ok := f.Value.(flag.Getter); ok {
			if _, ok := g.Get().(time.Duration); ok {
				if d, err := time.ParseDuration(def); err == nil {
					def = formatDuration(d)
				}
			}
		}
		if def != "" && def != "0" && def != "false" {
			usage += " (default " + def + ")"
		}
		rows = append(rows, row{left, usage})
		width = max(width, len(left))
	})
	if len(rows) > 0 {
		fmt.Fprintf(w, "\nflags:\n")
		for _, r := range rows {
			fmt.Fprintf(w, "  %-*s  %s\n", width, r.left, r.usage)
		}
	}
	fmt.Fprintf(w, "\nglobal flags: --api URL (default $CORDON_API, else %s), --token KEY (default $CORDON_TOKEN)\n", defaultAPI)
}

// printGroupUsage lists the commands of a group such as "incident".
func printGroupUsage(w io.Writer, group string) {
	fmt.Fprintf(w, "usage:\n")
	for _, c := range commands {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(w, "  cordonctl %s %s\n", c.name, c.synopsis)
		}
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// tagsFlag collects repeated --tag k=v flags.
type tagsFlag map[string]string

func (t tagsFlag) String() string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + t[k]
	}
	return strings.Join(parts, ",")
}

func (t tagsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	if _, dup := t[k]; dup {
		return fmt.Errorf("tag %q given twice", k)
	}
	t[k] = strings.TrimSpace(v)
	return nil
}
