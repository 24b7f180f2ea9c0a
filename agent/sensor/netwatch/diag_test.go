package netwatch

import (
	"encoding/binary"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// nlmsg frames a netlink message of the given type around body.
func nlmsg(typ uint16, body []byte) []byte {
	n := nlmsgHdrLen + len(body)
	b := make([]byte, (n+3)&^3)
	binary.NativeEndian.PutUint32(b[0:], uint32(n))
	binary.NativeEndian.PutUint16(b[4:], typ)
	copy(b[nlmsgHdrLen:], body)
	return b
}

// diagMsg encodes an inet_diag_msg for s.
func diagMsg(s sock) []byte {
	m := make([]byte, inetDiagMsgLen)
	m[0], m[1] = s.family, s.state
	id := m[4:]
	binary.BigEndian.PutUint16(id[0:], s.src.Port())
	binary.BigEndian.PutUint16(id[2:], s.dst.Port())
	if s.family == familyINET {
		a, b := s.src.Addr().As4(), s.dst.Addr().As4()
		copy(id[4:], a[:])
		copy(id[20:], b[:])
	} else {
		a, b := s.src.Addr().As16(), s.dst.Addr().As16()
		copy(id[4:], a[:])
		copy(id[20:], b[:])
	}
	binary.NativeEndian.PutUint32(id[40:], uint32(s.cookie))
	binary.NativeEndian.PutUint32(id[44:], uint32(s.cookie>>32))
	rest := m[4+inetDiagSockLen:]
	binary.NativeEndian.PutUint32(rest[12:], s.uid)
	binary.NativeEndian.PutUint32(rest[16:], s.inode)
	return m
}

func TestParseDiagFixture(t *testing.T) {
	// A real TCP dump filtered to a listener on 127.0.0.1:47123, a client
	// connected to it and the accepted socket.
	b, err := os.ReadFile("testdata/tcp4-loopback-47123.bin")
	if err != nil {
		t.Fatal(err)
	}
	socks, done, err := parseDiag(b, protoTCP, nil)
	if err != nil || !done {
		t.Fatalf("parseDiag = %v, done %v", err, done)
	}
	if len(socks) != 3 {
		t.Fatalf("got %d sockets, want 3: %+v", len(socks), socks)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	var listen, client, server int
	for _, s := range socks {
		if s.family != familyINET || s.src.Addr() != lo || s.inode == 0 || s.cookie == 0 {
			t.Errorf("socket %+v: want IPv4 loopback with inode and cookie", s)
		}
		switch {
		case s.state == stateListen && s.src.Port() == 47123:
			listen++
		case s.state == stateEstablished && s.dst.Port() == 47123:
			client++
		case s.state == stateEstablished && s.src.Port() == 47123:
			server++
		}
	}
	if listen != 1 || client != 1 || server != 1 {
		t.Errorf("listener %d, client %d, accepted %d; want one each", listen, client, server)
	}
}

func TestParseDiag(t *testing.T) {
	v6 := sock{proto: protoUDP, family: familyINET6, state: stateEstablished,
		src: netip.MustParseAddrPort("[2001:db8::1]:5353"), dst: netip.MustParseAddrPort("[2001:db8::2]:53"),
		uid: 1000, inode: 4242, cookie: 1<<40 | 7}
	mapped := sock{proto: protoUDP, family: familyINET6, state: stateClose,
		src: netip.AddrPortFrom(netip.MustParseAddr("::ffff:10.0.0.1"), 68)}
	errMsg := make([]byte, 4)
	binary.NativeEndian.PutUint32(errMsg, uint32(0xffffffff)) // -EPERM
	for _, tc := range []struct {
		name string
		in   []byte
		want []sock
		done bool
		err  string
	}{
		{name: "ipv6 and done", in: append(append(nlmsg(sockDiagByFamily, diagMsg(v6)), nlmsg(sockDiagByFamily, diagMsg(mapped))...), nlmsg(nlmsgDone, make([]byte, 4))...),
			want: []sock{v6, {proto: protoUDP, family: familyINET6, state: stateClose, src: netip.MustParseAddrPort("10.0.0.1:68"), dst: netip.MustParseAddrPort("[::]:0")}}, done: true},
		{name: "not done", in: nlmsg(sockDiagByFamily, diagMsg(v6)), want: []sock{v6}},
		{name: "other types skipped", in: nlmsg(99, []byte{1, 2, 3}), want: nil},
		{name: "kernel error", in: nlmsg(nlmsgError, errMsg), err: "errno 1"},
		{name: "ack", in: nlmsg(nlmsgError, make([]byte, 4))},
		{name: "short header", in: []byte{1, 2, 3}, err: "shorter than a message header"},
		{name: "length past end", in: nlmsg(sockDiagByFamily, diagMsg(v6))[:40], err: "out of range"},
		{name: "short body", in: nlmsg(sockDiagByFamily, make([]byte, 10)), err: "inet_diag_msg of"},
		{name: "bad family", in: nlmsg(sockDiagByFamily, make([]byte, inetDiagMsgLen)), err: "unknown address family"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, done, err := parseDiag(tc.in, protoUDP, nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || done != tc.done {
				t.Fatalf("err %v done %v", err, done)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("socket %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestDiagRequest(t *testing.T) {
	b := diagRequest(7, familyINET6, protoTCP, 1<<stateListen)
	ne := binary.NativeEndian
	if len(b) != 72 || ne.Uint32(b) != 72 || ne.Uint16(b[4:]) != sockDiagByFamily || ne.Uint16(b[6:]) != nlmFRequest|nlmFDump || ne.Uint32(b[8:]) != 7 {
		t.Fatalf("header % x", b[:16])
	}
	if b[16] != familyINET6 || b[17] != protoTCP || ne.Uint32(b[20:]) != 1<<stateListen {
		t.Fatalf("request % x", b[16:24])
	}
}

func TestParseSocketLink(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"socket:[12345]", 12345, true},
		{"socket:[4294967295]", 4294967295, true},
		{"socket:[4294967296]", 0, false},
		{"socket:[]", 0, false},
		{"socket:[12", 0, false},
		{"pipe:[12]", 0, false},
		{"/dev/null", 0, false},
	} {
		got, ok := parseSocketLink(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseSocketLink(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseDiag(f *testing.F) {
	if b, err := os.ReadFile("testdata/tcp4-loopback-47123.bin"); err == nil {
		f.Add(b)
	}
	f.Add(nlmsg(sockDiagByFamily, diagMsg(sock{family: familyINET6})))
	f.Add(nlmsg(nlmsgError, []byte{1, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		socks, _, _ := parseDiag(b, protoTCP, nil)
		for _, s := range socks {
			if !s.src.IsValid() || !s.dst.IsValid() {
				t.Fatalf("invalid address in %+v", s)
			}
		}
	})
}

func FuzzParseSocketLink(f *testing.F) {
	f.Add("socket:[12345]")
	f.Add("anon_inode:[eventfd]")
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := parseSocketLink(s); ok && !strings.Contains(s, "]") {
			t.Fatalf("accepted %q as %d", s, n)
		}
	})
}
