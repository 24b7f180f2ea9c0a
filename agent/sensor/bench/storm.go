package bench

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// Storm runs two shells spawning /bin/true with tag and a counter in
// argv (TAG-WORKER-N) for d, and returns how many they spawned in all.
// The sensors' benchmarks and the whole agent's storm benchmark drive it.
func Storm(tag string, d time.Duration) (int, error) {
	var mu sync.Mutex
	var spawned int
	var g errgroup.Group
	var workers []*exec.Cmd
	for w := 0; w < 2; w++ {
		script := fmt.Sprintf(`i=0; trap 'echo $i; exit 0' TERM; while :; do /bin/true %s-%d-$i; i=$((i+1)); done`, tag, w)
		cmd := exec.Command("/bin/sh", "-c", script)
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			// Stop the workers already spawning: each runs until told.
			for _, started := range workers {
				_ = started.Process.Kill()
				_ = started.Wait()
			}
			return 0, fmt.Errorf("starting storm worker %d: %w", w, err)
		}
		workers = append(workers, cmd)
		g.Go(func() error {
			time.Sleep(d)
			_ = cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				return fmt.Errorf("storm worker: %w", err)
			}
			n, err := strconv.Atoi(strings.TrimSpace(out.String()))
			if err != nil {
				return fmt.Errorf("storm worker printed %q", out.String())
			}
			mu.Lock()
			spawned += n
			mu.Unlock()
			return nil
		})
	}
	return spawned, g.Wait()
}
