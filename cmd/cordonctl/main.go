// Cordonctl is the responder's command line for the Cordon collector: it
// lists agents, findings, incidents and commands, updates incidents,
// contains hosts (isolate, release, kill, drill) and creates enrollment
// tokens and API keys, all through the collector's REST API (docs/api.md).
//
// It reads the API address from CORDON_API (default http://127.0.0.1:7480)
// and the API key from CORDON_TOKEN; the global flags --api and --token
// override them. Flags may come before or after positional arguments.
// Every listing takes --json and then prints one JSON array holding every
// page. "cordonctl help" lists the commands and the exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/cordon-edr/cordon/cmd/internal/buildinfo"
)

// Exit codes, documented in the help output.
const (
	exitOK          = 0 // success
	exitFailed      = 1 // the operation failed or the API returned an error
	exitUsage       = 2 // unknown command or flag, missing argument
	exitUnreachable = 3 // the API could not be reached
)

const (
	defaultAPI     = "http://127.0.0.1:7480"
	defaultPoll    = 500 * time.Millisecond
	requestTimeout = 30 * time.Second
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run executes one cordonctl invocation and returns its exit code.
func run(args []string, env func(string) string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a := &app{
		env:    env,
		stdout: stdout,
		stderr: stderr,
		now:    time.Now,
		poll:   defaultPoll,
		http:   &http.Client{Timeout: requestTimeout},
	}
	return a.run(ctx, args)
}

// app holds what one invocation depends on, so tests can replace the
// clock and the poll interval.
type app struct {
	env    func(string) string
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
	poll   time.Duration
	http   *http.Client
}

func (a *app) run(ctx context.Context, args []string) int {
	words, rest, err := splitCommand(args)
	if err != nil {
		fmt.Fprintf(a.stderr, "cordonctl: %v\n", err)
		a.printOverview(a.stderr)
		return exitUsage
	}
	switch {
	case len(words) == 0 && hasHelpFlag(rest):
		a.printOverview(a.stdout)
		return exitOK
	case len(words) == 0 && hasFlag(rest, "version"):
		return a.run(ctx, []string{"version"})
	case len(words) == 0:
		a.printOverview(a.stderr)
		return exitUsage
	case words[0] == "help":
		fs, _ := newFlagSet("help")
		topic, err := parseInterspersed(fs, rest)
		if err != nil && !errors.Is(err, errHelp) {
			fmt.Fprintf(a.stderr, "cordonctl: help: %v\n", err)
			return exitUsage
		}
		return a.help(append(words[1:], topic...))
	}

	cmd, err := lookup(words)
	if err != nil {
		fmt.Fprintf(a.stderr, "cordonctl: %v\n", err)
		if g := groupOf(words[0]); g != nil {
			printGroupUsage(a.stderr, words[0])
		} else {
			a.printOverview(a.stderr)
		}
		return exitUsage
	}
	return a.exec(ctx, cmd, rest)
}

// exec parses the flags of cmd and runs it, turning its error into a
// message on stderr and an exit code.
func (a *app) exec(ctx context.Context, cmd *command, args []string) int {
	fs, g := newFlagSet(cmd.name)
	runFn := cmd.setup(fs)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, errHelp) {
		printUsage(a.stdout, cmd, fs)
		return exitOK
	}
	if err == nil {
		err = checkPositional(cmd, pos)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "cordonctl: %s: %v\n", cmd.name, err)
		printUsage(a.stderr, cmd, fs)
		return exitUsage
	}
	inv := &invocation{app: a, ctx: ctx, cmd: cmd, args: pos, globals: g, flags: fs}
	err = runFn(inv)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	fmt.Fprintf(a.stderr, "cordonctl: %s: %v\n", cmd.name, err)
	var ue *usageError
	var re *unreachableError
	switch {
	case errors.As(err, &ue):
		printUsage(a.stderr, cmd, fs)
		return exitUsage
	case errors.As(err, &re):
		return exitUnreachable
	default:
		return exitFailed
	}
}

// help prints the overview, or the usage of one command or group.
func (a *app) help(words []string) int {
	if len(words) == 0 {
		a.printOverview(a.stdout)
		return exitOK
	}
	if cmd, err := lookup(words); err == nil {
		fs, _ := newFlagSet(cmd.name)
		cmd.setup(fs)
		printUsage(a.stdout, cmd, fs)
		return exitOK
	}
	if len(words) == 1 && groupOf(words[0]) != nil {
		printGroupUsage(a.stdout, words[0])
		return exitOK
	}
	fmt.Fprintf(a.stderr, "cordonctl: help: unknown command %q\n", strings.Join(words, " "))
	a.printOverview(a.stderr)
	return exitUsage
}

func (a *app) printOverview(w io.Writer) {
	fmt.Fprint(w, `cordonctl is the responder's command line for the Cordon collector.

usage: cordonctl [--api URL] [--token KEY] COMMAND [ARGS] [FLAGS]

commands:
`)
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-*s  %s\n", width, "help [COMMAND]", "show this help or the usage of one command")
	fmt.Fprint(w, `
Flags may come before or after the arguments; every listing takes --json
and then prints one JSON array holding all pages.

environment:
  CORDON_API    address of the collector's API (default `+defaultAPI+`); --api overrides it
  CORDON_TOKEN  API key sent as a bearer token; --token overrides it. The collector
                prints an admin key on its first run and writes it to DATA/admin.token.

exit codes:
  0  success
  1  the operation failed: the API returned an error, or a command waited on
     with --wait failed, expired or timed out
  2  usage error: unknown command or flag, missing or bad argument
  3  the API could not be reached (connection refused, DNS, TLS, timeout)
`)
}

func setupVersion(fs *flag.FlagSet) func(*invocation) error {
	return func(inv *invocation) error {
		fmt.Fprintln(inv.stdout, buildinfo.String("cordonctl"))
		return nil
	}
}

// buildVersion is the version stamped at link time, else the module
// version recorded by the go tool, else "dev".
func buildVersion() string { return buildinfo.Get().Version }
