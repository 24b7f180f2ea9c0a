package wake

import "testing"

func TestWakeSignalsTheKeysWaitersOnly(t *testing.T) {
	var w Waiters
	w.Wake("nobody") // no waiter: nothing to do, nothing blocks
	a1, stopA1 := w.Wait("a")
	a2, stopA2 := w.Wait("a")
	b, stopB := w.Wait("b")
	w.Wake("a")
	w.Wake("a") // a waiter not listening keeps one signal, never blocks Wake
	for i, ch := range []<-chan struct{}{a1, a2} {
		select {
		case <-ch:
		default:
			t.Errorf("waiter %d of a was not woken", i)
		}
		select {
		case <-ch:
			t.Errorf("waiter %d of a got two signals", i)
		default:
		}
	}
	select {
	case <-b:
		t.Error("waking a woke b")
	default:
	}
	stopA1()
	w.Wake("a")
	select {
	case <-a1:
		t.Error("a stopped waiter was woken")
	default:
	}
	if _, ok := <-a2; !ok {
		t.Error("a2 closed")
	}
	stopA2()
	stopB()
	if n := w.waiting(); n != 0 {
		t.Errorf("%d keys still have waiters after every waiter stopped", n)
	}
}
