package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cordon-edr/cordon/agent/sensor"
	"github.com/cordon-edr/cordon/agent/sensor/fswatch"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// TestShortLivedWritersNamed runs the process and file sensors together,
// as the agent does, while one-shot touch processes each create a file
// and exit at once. No creation may be attributed to the wrong program:
// a writer forked by this test whose exec the process sensor had not yet
// read must not be named after this test's binary. It logs how many were
// named in full; docs/sensors.md gives the figures.
func TestShortLivedWritersNamed(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: fanotify names writers only with CAP_SYS_ADMIN")
	}
	touch, err := exec.LookPath("touch")
	if err != nil {
		t.Skipf("no touch to run: %v", err)
	}
	dir := t.TempDir()
	out := watchWriters(t, dir)

	const n = 100
	for i := range n {
		if err := exec.Command(touch, filepath.Join(dir, fmt.Sprint("w", i))).Run(); err != nil {
			t.Fatal(err)
		}
	}
	created, named := 0, 0
	timeout := time.After(60 * time.Second)
	for created < n {
		select {
		case e := <-out:
			if e.File == nil || e.Event.Type != ecs.TypeCreation || !strings.HasPrefix(filepath.Base(e.File.Path), "w") {
				continue
			}
			created++
			switch {
			case e.Process == nil || e.Process.PID <= 0:
				t.Errorf("%s: no writer pid", e.File.Path)
			case e.Process.Executable == touch:
				named++
			case e.Process.Executable != "":
				t.Errorf("%s: written by pid %d, named %q, want %s or nothing", e.File.Path, e.Process.PID, e.Process.Executable, touch)
			}
		case <-timeout:
			t.Fatalf("%d of %d creations reported in 60s", created, n)
		}
	}
	t.Logf("%d of %d one-shot writers named in full", named, n)
	if named == 0 {
		t.Errorf("no one-shot writer was named %s", touch)
	}
}

// watchWriters runs the process and file sensors on dir, wired as the
// agent wires them, until the test ends. It returns once the file sensor
// reports changes with their writers, and skips the test when fanotify
// is not available.
func watchWriters(t *testing.T, dir string) <-chan ecs.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan ecs.Event, 4096)
	p := sensor.NewProcess(sensor.Options{})
	fs, err := fswatch.New(fswatch.Options{Paths: []string{dir}, Process: p.Lookup, Lineage: p.Lineage, Busy: p.Busy})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var g errgroup.Group
	g.Go(func() error { return p.Run(ctx, out) })
	g.Go(func() error { return fs.Run(ctx, out) })
	t.Cleanup(func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Error(err)
		}
	})

	// Wait until the file sensor reports a change made by this test.
	ready := filepath.Join(dir, "ready")
	deadline := time.Now().Add(30 * time.Second)
	for seen := false; !seen; {
		if time.Now().After(deadline) {
			t.Fatal("the file sensor reported nothing in 30s")
		}
		if err := os.WriteFile(ready, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		timer := time.After(500 * time.Millisecond)
	drain:
		for {
			select {
			case e := <-out:
				if e.File != nil && e.File.Path == ready {
					seen = true
				}
			case <-timer:
				break drain
			}
		}
	}
	if mode, reason := fs.Mode(); mode != fswatch.ModeFanotify {
		t.Skipf("file sensor mode %q (%s): fanotify is not available here", mode, reason)
	}
	return out
}

// TestShellWriterLineage runs a shell that creates a file and exits at
// once: the creation carries the chain of processes that led to it, up
// to this test. The shell may exec touch or fork it, so the test only
// asks for its own pid somewhere in the parent and ancestry.
func TestShellWriterLineage(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: fanotify names writers only with CAP_SYS_ADMIN")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("no sh to run: %v", err)
	}
	if _, err := exec.LookPath("touch"); err != nil {
		t.Skipf("no touch to run: %v", err)
	}
	dir := t.TempDir()
	out := watchWriters(t, dir)

	file := filepath.Join(dir, "from-shell")
	if err := exec.Command(sh, "-c", "touch '"+file+"'").Run(); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(60 * time.Second)
	for {
		select {
		case e := <-out:
			if e.File == nil || e.File.Path != file || e.Event.Type != ecs.TypeCreation {
				continue
			}
			p := e.Process
			if p == nil || p.Parent == nil {
				t.Fatalf("creation of %s: process %+v, want a parent", file, p)
			}
			var chain []string
			found := false
			for _, a := range append([]ecs.Parent{*p.Parent}, p.Ancestry...) {
				chain = append(chain, fmt.Sprintf("%d %s", a.PID, a.Name))
				found = found || a.PID == os.Getpid()
			}
			if !found {
				t.Fatalf("creation of %s by %d %s: lineage %q does not include this test, pid %d", file, p.PID, p.Name, chain, os.Getpid())
			}
			t.Logf("writer %d %s, lineage %q", p.PID, p.Name, chain)
			return
		case <-timeout:
			t.Fatalf("no creation of %s reported in 60s", file)
		}
	}
}
