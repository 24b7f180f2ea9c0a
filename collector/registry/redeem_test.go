package registry

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// A fleet enrolling at once with one token good for exactly its size:
// every agent is enrolled, and one more is refused as used up.
func TestRedeemConcurrent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	const n = 64
	_, secret, err := e.reg.CreateToken(ctx, TokenRequest{Uses: n, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Signing takes a while, as a real CA's does, which keeps each
	// transaction open long enough for the others to conflict with it.
	slowIssue := func(id string) ([]byte, time.Time, error) {
		time.Sleep(2 * time.Millisecond)
		return issue(id)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := e.reg.Redeem(ctx, secret, host, nil, slowIssue); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent enrollment refused: %v", err)
	}
	if got := e.keys(t, "agent/"); got != n {
		t.Errorf("%d agents stored, want %d", got, n)
	}
	if _, _, err := e.reg.Redeem(ctx, secret, host, nil, issue); !errors.Is(err, ErrTokenUsedUp) {
		t.Errorf("enrollment %d: %v, want ErrTokenUsedUp", n+1, err)
	}
}
