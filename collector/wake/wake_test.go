package wake

import "testing"

func TestWakeCallsTheKeysWaitersOnly(t *testing.T) {
	var w Waiters
	w.Wake("nobody") // no waiter: nothing to do
	var a1, a2, b int
	stopA1 := w.Notify("a", func() { a1++ })
	stopA2 := w.Notify("a", func() { a2++ })
	stopB := w.Notify("b", func() { b++ })
	w.Wake("a")
	w.Wake("a")
	if a1 != 2 || a2 != 2 {
		t.Errorf("two wakes of a: waiters called %d and %d times, want 2 each", a1, a2)
	}
	if b != 0 {
		t.Errorf("waking a called b's waiter %d times", b)
	}
	stopA1()
	w.Wake("a")
	if a1 != 2 {
		t.Errorf("a stopped waiter was called (%d calls)", a1)
	}
	if a2 != 3 {
		t.Errorf("the other waiter of a: %d calls, want 3", a2)
	}
	stopA2()
	stopB()
	if n := w.waiting(); n != 0 {
		t.Errorf("%d keys still have waiters after every waiter stopped", n)
	}
}

func TestWaiterMayStopFromItsOwnCall(t *testing.T) {
	var w Waiters
	var stop func()
	calls := 0
	stop = w.Notify("a", func() { calls++; stop() })
	w.Wake("a") // must not deadlock
	w.Wake("a")
	if calls != 1 {
		t.Errorf("called %d times, want 1", calls)
	}
}
