package service

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// UsageError is a mistake in a command line; the binaries exit with
// status 2 on it.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Command is the service command of spec's binary: args are the words
// after "service", an action of Actions and its flags. defaultConfig is
// the configuration file the binary reads when --config is not given;
// check loads the configuration at a path ("" for the default), so that
// install refuses a configuration the service could not start with.
// What the service manager answers goes to stdout, flag help to stderr.
func Command(spec Spec, defaultConfig string, check func(configPath string) error, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || !slices.Contains(Actions, args[0]) {
		return UsageError{fmt.Errorf("service: want one of %s", strings.Join(Actions, ", "))}
	}
	action := args[0]
	fs := flag.NewFlagSet(spec.Name+" service "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration `FILE` the service runs with (install; default "+defaultConfig+" when it exists)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return UsageError{err}
	}
	if fs.NArg() > 0 {
		return UsageError{fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	if action == "install" {
		// A service that cannot start is worse than a refused install.
		if err := check(*configPath); err != nil {
			return err
		}
	}
	runArgs, err := Args(*configPath)
	if err != nil {
		return err
	}
	msg, err := Control(spec, action, runArgs)
	if err != nil {
		return fmt.Errorf("service %s: %w", action, err)
	}
	fmt.Fprintln(stdout, msg)
	return nil
}
