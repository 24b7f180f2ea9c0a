package pki

import "testing"

func TestBreakGlassCode(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	a1, err := ca.BreakGlassCode("agent-1")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := ca.BreakGlassCode("agent-2")
	if a1 == a2 || len(a1) != 24 {
		t.Errorf("codes %q and %q: want 24 characters, distinct per agent", a1, a2)
	}
	// The same CA, loaded again, gives the same code.
	again, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := again.BreakGlassCode("agent-1"); c != a1 {
		t.Errorf("code changed across loads: %q then %q", a1, c)
	}
	other, _ := LoadOrCreate(t.TempDir())
	if c, _ := other.BreakGlassCode("agent-1"); c == a1 {
		t.Error("another collector's CA gives the same code")
	}
}
