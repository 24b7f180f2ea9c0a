package isolation

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/cordon-edr/cordon/protocol"
)

// fakeFirewall records what the isolator asks of the system.
type fakeFirewall struct {
	rules    []Rule
	present  bool
	applyErr error
	ops      []string
}

func (f *fakeFirewall) Apply(r []Rule) error {
	f.ops = append(f.ops, "apply")
	if f.applyErr != nil {
		return f.applyErr
	}
	f.rules, f.present = r, true
	return nil
}
func (f *fakeFirewall) Remove() error {
	f.ops = append(f.ops, "remove")
	f.rules, f.present = nil, false
	return nil
}
func (f *fakeFirewall) Check(r []Rule) error {
	if !f.present {
		return errors.New("no table")
	}
	return nil
}
func (f *fakeFirewall) Present() (bool, error) { return f.present, nil }

func newTestIsolator(t *testing.T) (*Isolator, *fakeFirewall) {
	fw := &fakeFirewall{}
	i := New(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	i.fw = fw
	real := i.probe
	i.probe = func(ctx context.Context, addr string) error {
		if addr == blockedProbe {
			return errors.New("sendto: operation not permitted")
		}
		return real(ctx, addr)
	}
	return i, fw
}

var testPolicy = Policy{Collector: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:7443")}}

// reachableProbe returns a probe address that a datagram can reach: a
// listener on loopback, which the fake firewall does not block.
func reachableProbe(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String()
}

// blockedProbe is an address the fake firewall blocks, as the real one
// would: sending to it fails the way a dropped datagram does.
const blockedProbe = "192.0.2.1:9"

func TestIsolateProvenAndPersisted(t *testing.T) {
	i, fw := newTestIsolator(t)
	pinged := false
	res, err := i.Isolate(context.Background(), Request{
		Policy: testPolicy, Command: "c1", BreakGlassSHA256: protocol.BreakGlassHash("code"),
		Channel: func(context.Context) error { pinged = true; return nil },
		Probe:   blockedProbe,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !pinged || !strings.Contains(res, "collector channel answered") {
		t.Errorf("result %q, pinged %v", res, pinged)
	}
	if !fw.present || !i.Isolated() {
		t.Fatalf("not isolated after success: table %v, state %v", fw.present, i.Isolated())
	}
	// A restart re-applies the saved policy.
	i2, fw2 := newTestIsolator(t)
	i2.path = i.path
	if err := i2.Restore(); err != nil {
		t.Fatal(err)
	}
	if !fw2.present || len(fw2.rules) != len(Rules(testPolicy)) {
		t.Errorf("restore did not re-apply the isolation: %+v", fw2)
	}
}

func TestIsolateRollsBack(t *testing.T) {
	tests := []struct {
		name    string
		channel error
		probe   func(t *testing.T) string
		want    string
	}{
		{"collector channel lost", errors.New("timeout"), func(*testing.T) string { return blockedProbe }, "collector channel did not answer"},
		{"probe still leaves", nil, reachableProbe, "still left the host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, fw := newTestIsolator(t)
			_, err := i.Isolate(context.Background(), Request{
				Policy:  testPolicy,
				Channel: func(context.Context) error { return tt.channel },
				Probe:   tt.probe(t),
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "rolled back") {
				t.Fatalf("err = %v, want %q and a rollback", err, tt.want)
			}
			if fw.present || i.Isolated() {
				t.Errorf("still isolated after the rollback: table %v, state %v (ops %v)", fw.present, i.Isolated(), fw.ops)
			}
		})
	}
}

func TestIsolateNeedsCollector(t *testing.T) {
	i, fw := newTestIsolator(t)
	if _, err := i.Isolate(context.Background(), Request{Channel: func(context.Context) error { return nil }}); err == nil {
		t.Fatal("isolated without a collector address")
	}
	if len(fw.ops) != 0 {
		t.Errorf("touched the firewall: %v", fw.ops)
	}
}

func TestReleaseAndBreakGlass(t *testing.T) {
	i, fw := newTestIsolator(t)
	isolate := func() {
		t.Helper()
		if _, err := i.Isolate(context.Background(), Request{
			Policy: testPolicy, BreakGlassSHA256: protocol.BreakGlassHash("Right-Code"),
			Channel: func(context.Context) error { return nil }, Probe: blockedProbe,
		}); err != nil {
			t.Fatal(err)
		}
	}
	isolate()
	if _, err := i.BreakGlass("wrong"); !errors.Is(err, ErrBadCode) {
		t.Fatalf("wrong code: %v", err)
	}
	if !fw.present || !i.Isolated() {
		t.Fatal("a wrong code released the host")
	}
	if _, err := i.BreakGlass("  right-code "); err != nil {
		t.Fatal(err)
	}
	if fw.present || i.Isolated() {
		t.Fatal("still isolated after the break-glass release")
	}
	isolate()
	if res, err := i.Release("test"); err != nil || !strings.HasPrefix(res, "released") {
		t.Fatalf("Release = %q, %v", res, err)
	}
	if res, err := i.Release("test"); err != nil || !strings.Contains(res, "not isolated") {
		t.Fatalf("second Release = %q, %v", res, err)
	}
}

func TestRestoreRemovesLeftoverTable(t *testing.T) {
	i, fw := newTestIsolator(t)
	fw.present = true
	if err := i.Restore(); err != nil {
		t.Fatal(err)
	}
	if fw.present {
		t.Error("a table the state does not account for survived the start")
	}
}

func TestVerifyReappliesRemovedRules(t *testing.T) {
	i, fw := newTestIsolator(t)
	if what, err := i.Verify(); what != "" || err != nil || len(fw.ops) != 0 {
		t.Fatalf("not isolated: Verify = %q, %v; ops %v", what, err, fw.ops)
	}
	if _, err := i.Isolate(context.Background(), Request{
		Policy: testPolicy, Channel: func(context.Context) error { return nil }, Probe: blockedProbe,
	}); err != nil {
		t.Fatal(err)
	}
	if what, err := i.Verify(); what != "" || err != nil {
		t.Fatalf("rules in place: Verify = %q, %v", what, err)
	}
	applied := len(fw.ops)

	fw.present, fw.rules = false, nil // someone deleted the table
	what, err := i.Verify()
	if err != nil || what == "" {
		t.Fatalf("table gone: Verify = %q, %v; want what was wrong", what, err)
	}
	if !fw.present || len(fw.rules) != len(Rules(testPolicy)) || len(fw.ops) != applied+1 {
		t.Fatalf("rules not re-applied: %+v", fw)
	}

	fw.present, fw.applyErr = false, errors.New("netlink: permission denied")
	if _, err := i.Verify(); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("a failed re-apply was not reported: %v", err)
	}
}
