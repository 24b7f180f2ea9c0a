package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Drill scenarios.
const (
	// ScenarioTmpExec runs copies of true and sleep from a fresh directory
	// in /dev/shm (or the temporary directory when /dev/shm is missing or
	// mounted noexec).
	ScenarioTmpExec = "tmp-exec"
	// ScenarioReverseShell starts an interactive bash whose input and
	// output are a TCP connection to a listener the drill opens on
	// 127.0.0.1, which closes every connection at once.
	ScenarioReverseShell = "reverse-shell"
	// ScenarioDownloadPipe pipes curl's output for file:///dev/null into a
	// shell, touching no network.
	ScenarioDownloadPipe = "download-pipe"
	// ScenarioAll runs every scenario above in turn.
	ScenarioAll = "all"
)

// DefaultDrillScenario is run when Drill is given an empty scenario.
const DefaultDrillScenario = ScenarioTmpExec

// drillTimeout bounds one scenario.
const drillTimeout = 30 * time.Second

// drillPATH is the search path of every drill process, so a drill runs
// the system's programs whatever the agent's environment.
const drillPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// markerRe is what a marker may look like: it lands in a path and in shell
// command lines, unquoted.
var markerRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// DrillScenarios returns the scenario names Drill accepts, "all" last.
func DrillScenarios() []string {
	return []string{ScenarioTmpExec, ScenarioReverseShell, ScenarioDownloadPipe, ScenarioAll}
}

// Drill runs a harmless attack simulation that the built-in rules flag.
// Every process it starts carries marker in its executable path or
// command line, so the agent can tag the resulting findings as drill
// findings. marker must be 1 to 100 letters, digits, '.', '_' or '-',
// starting with a letter or digit. An empty scenario means
// DefaultDrillScenario. The result is a short text of what was run.
//
// Drill never reaches beyond the host: the reverse shell connects only to
// a loopback listener the drill itself opens, and the download reads
// file:///dev/null.
func Drill(ctx context.Context, scenario, marker string) (result string, err error) {
	return runDrill(ctx, scenario, marker, nil)
}

// step is one process a drill started.
type step struct {
	exe  string   // path executed
	args []string // argv, program name first
}

func (s step) commandLine() string { return strings.Join(s.args, " ") }

// drill runs scenarios; observe, if set, sees every process started.
type drill struct {
	marker  string
	observe func(step)
}

func runDrill(ctx context.Context, scenario, marker string, observe func(step)) (string, error) {
	if runtime.GOOS != "linux" {
		return "", fmt.Errorf("actions: drills are not supported on %s", runtime.GOOS)
	}
	if !markerRe.MatchString(marker) {
		return "", fmt.Errorf("actions: drill marker %q: want 1 to 100 of [A-Za-z0-9._-], starting with a letter or digit", marker)
	}
	if scenario == "" {
		scenario = DefaultDrillScenario
	}
	d := &drill{marker: marker, observe: observe}
	switch scenario {
	case ScenarioTmpExec:
		return d.tmpExec(ctx)
	case ScenarioReverseShell:
		return d.reverseShell(ctx)
	case ScenarioDownloadPipe:
		return d.downloadPipe(ctx, hasProgram("curl"))
	case ScenarioAll:
		var (
			results []string
			errs    []error
		)
		for _, s := range DrillScenarios() {
			if s == ScenarioAll {
				continue
			}
			r, err := runDrill(ctx, s, marker, observe)
			if err != nil {
				errs = append(errs, err)
				r = s + ": failed"
			}
			results = append(results, r)
		}
		return strings.Join(results, "; "), errors.Join(errs...)
	}
	return "", fmt.Errorf("actions: unknown drill scenario %q (valid: %s)", scenario, strings.Join(DrillScenarios(), ", "))
}

// tmpExec copies true and sleep into a fresh directory named after the
// marker under /dev/shm and runs them from there: true once, and sleep
// for 0.2 s so that sensors that poll the process table see it too.
func (d *drill) tmpExec(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, drillTimeout)
	defer cancel()
	trueBin, err := findProgram("true")
	if err != nil {
		return "", fmt.Errorf("actions: drill %s: %w", ScenarioTmpExec, err)
	}
	sleepBin, err := findProgram("sleep")
	if err != nil {
		return "", fmt.Errorf("actions: drill %s: %w", ScenarioTmpExec, err)
	}
	var errs []error
	for _, parent := range []string{"/dev/shm", os.TempDir()} {
		if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
			continue
		}
		dir := filepath.Join(parent, d.marker)
		ran, err := d.runCopies(ctx, dir, trueBin, sleepBin)
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = fmt.Errorf("clean up %s: %w", dir, rmErr)
		}
		if err == nil {
			return fmt.Sprintf("%s: ran %s, removed %s", ScenarioTmpExec, strings.Join(ran, " and "), dir), nil
		}
		errs = append(errs, err)
		if len(ran) > 0 || !errors.Is(err, fs.ErrPermission) {
			break // only a directory we may not execute from is worth a second try
		}
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("neither /dev/shm nor the temporary directory exists"))
	}
	return "", fmt.Errorf("actions: drill %s: %w", ScenarioTmpExec, errors.Join(errs...))
}

// runCopies creates dir, copies the programs into it and runs them. It
// returns the command lines it ran.
func (d *drill) runCopies(ctx context.Context, dir, trueBin, sleepBin string) ([]string, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		// An existing directory is not reused: it may not be ours.
		return nil, fmt.Errorf("create drill directory: %w", err)
	}
	var ran []string
	for _, p := range []struct {
		src  string
		args []string
	}{
		{trueBin, nil},
		{sleepBin, []string{"0.2"}},
	} {
		exe := filepath.Join(dir, filepath.Base(p.src))
		if err := copyFile(p.src, exe); err != nil {
			return ran, err
		}
		s := step{exe: exe, args: append([]string{exe}, p.args...)}
		if _, err := d.run(ctx, s); err != nil {
			return ran, err
		}
		ran = append(ran, s.commandLine())
	}
	return ran, nil
}

// reverseShell opens a loopback listener that accepts and at once closes
// connections, and has bash connect an interactive shell to it the way a
// reverse shell does.
func (d *drill) reverseShell(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, drillTimeout)
	defer cancel()
	bash, err := findProgram("bash")
	if err != nil {
		return "", fmt.Errorf("actions: drill %s: %w", ScenarioReverseShell, err)
	}
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return "", fmt.Errorf("actions: drill %s: listen on loopback: %w", ScenarioReverseShell, err)
	}
	accepted := 0
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted++
			c.Close()
		}
	})
	port := ln.Addr().(*net.TCPAddr).Port
	// The inner shell gets the marker as its positional parameter, the
	// outer one in a comment; --norc keeps the host's rc files out of it.
	script := fmt.Sprintf("bash --norc -i -s %s >& /dev/tcp/127.0.0.1/%d 0>&1 # %s", d.marker, port, d.marker)
	s := step{exe: bash, args: []string{"bash", "-c", script}}
	code, err := d.run(ctx, s)
	ln.Close()
	wg.Wait()
	if err != nil {
		return "", fmt.Errorf("actions: drill %s: %w", ScenarioReverseShell, err)
	}
	return fmt.Sprintf("%s: ran bash -c '%s' (exit %d) against a listener on 127.0.0.1:%d that closed %d connection(s) at once",
		ScenarioReverseShell, script, code, port, accepted), nil
}

// downloadPipe runs "curl ... file:///dev/null | sh": the pipe of a
// download into a shell, with nothing downloaded. Without curl, a shell
// function named curl stands in for it, so the command line is the same.
func (d *drill) downloadPipe(ctx context.Context, useCurl bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, drillTimeout)
	defer cancel()
	sh, err := findProgram("sh")
	if err != nil {
		return "", fmt.Errorf("actions: drill %s: %w", ScenarioDownloadPipe, err)
	}
	// -q keeps ~/.curlrc out; the header only carries the marker.
	pipe := fmt.Sprintf("curl -q -s -H X-Cordon-Drill:%s file:///dev/null | sh -s %s # %s", d.marker, d.marker, d.marker)
	if !useCurl {
		pipe = "curl() { :; }; " + pipe
	}
	s := step{exe: sh, args: []string{"sh", "-c", pipe}}
	code, err := d.run(ctx, s)
	if err != nil {
		return "", fmt.Errorf("actions: drill %s: %w", ScenarioDownloadPipe, err)
	}
	if code != 0 {
		return "", fmt.Errorf("actions: drill %s: sh -c '%s' exited with status %d", ScenarioDownloadPipe, pipe, code)
	}
	how := "curl"
	if !useCurl {
		how = "a shell function standing in for curl, which is not installed"
	}
	return fmt.Sprintf("%s: ran sh -c '%s' with %s, no network", ScenarioDownloadPipe, pipe, how), nil
}

// run starts s, waits for it and returns its exit status; an error means
// it could not run or was stopped by ctx. Output is discarded except for
// error messages.
func (d *drill) run(ctx context.Context, s step) (int, error) {
	var out bytes.Buffer
	var cmd *exec.Cmd
	for attempt := 0; ; attempt++ {
		cmd = exec.CommandContext(ctx, s.exe, s.args[1:]...)
		cmd.Args = s.args
		cmd.Env = []string{"PATH=" + drillPATH, "HISTFILE=", "LC_ALL=C"}
		cmd.Dir = "/"
		cmd.Stdout = &limitedWriter{w: &out, n: 4096}
		cmd.Stderr = cmd.Stdout
		cmd.WaitDelay = time.Second
		setProcessGroup(cmd)
		err := cmd.Start()
		if err == nil {
			break
		}
		// A file just written may still be open for writing in a child
		// forked meanwhile by another goroutine (ETXTBSY): try again.
		if errors.Is(err, syscall.ETXTBSY) && attempt < 10 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		return -1, fmt.Errorf("start %s: %w", s.commandLine(), err)
	}
	if d.observe != nil {
		d.observe(s)
	}
	err := cmd.Wait()
	if ctx.Err() != nil {
		return -1, fmt.Errorf("%s: %w", s.commandLine(), ctx.Err())
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("%s: %w (output: %q)", s.commandLine(), err, out.String())
	}
	return 0, nil
}

// findProgram returns the path of a system program.
func findProgram(name string) (string, error) {
	for _, dir := range filepath.SplitList(drillPATH) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in %s", name, drillPATH)
}

func hasProgram(name string) bool {
	_, err := findProgram(name)
	return err == nil
}

// copyFile copies src to a new executable file dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

// limitedWriter keeps the first n bytes written and discards the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.n -= k
		if _, err := l.w.Write(p[:k]); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
