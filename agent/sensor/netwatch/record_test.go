package netwatch

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

func connRecordBytes(kind uint32, family uint16, src, dst netip.Addr, sport, dport uint16) []byte {
	b := make([]byte, connRecordLen)
	ne := binary.NativeEndian
	ne.PutUint64(b[0:], 42)
	ne.PutUint32(b[8:], kind)
	ne.PutUint32(b[12:], 1234)
	ne.PutUint32(b[16:], 1000)
	ne.PutUint16(b[20:], family)
	ne.PutUint16(b[22:], sport)
	ne.PutUint16(b[24:], dport)
	s, d := src.As16(), dst.As16()
	if src.Is4() {
		a, c := src.As4(), dst.As4()
		copy(b[32:], a[:])
		copy(b[48:], c[:])
	} else {
		copy(b[32:], s[:])
		copy(b[48:], d[:])
	}
	copy(b[64:], "curl")
	return b
}

func TestParseConnRecord(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	r, err := parseConnRecord(connRecordBytes(kindConnect, familyINET, lo, lo, 40000, 80))
	if err != nil {
		t.Fatal(err)
	}
	want := sock{proto: protoTCP, family: familyINET, state: stateEstablished, src: netip.AddrPortFrom(lo, 40000),
		dst: netip.AddrPortFrom(lo, 80), uid: 1000, cookie: 42, pid: 1234, origin: originConnect, comm: "curl"}
	if r.sk != want {
		t.Errorf("parsed %+v, want %+v", r.sk, want)
	}
	v6 := netip.MustParseAddr("::1")
	r, err = parseConnRecord(connRecordBytes(kindListen, familyINET6, v6, netip.IPv6Unspecified(), 22, 0))
	if err != nil || r.sk.origin != originListen || r.sk.state != stateListen || r.sk.src.Addr() != v6 {
		t.Errorf("listener record: %+v, %v", r.sk, err)
	}
	r, err = parseConnRecord(connRecordBytes(kindUDPConnect, familyINET6, v6, v6, 5353, 53))
	if err != nil || r.sk.proto != protoUDP || r.sk.origin != originConnect || r.sk.state != stateEstablished ||
		r.sk.dst != netip.AddrPortFrom(v6, 53) || r.sk.pid != 1234 {
		t.Errorf("UDP record: %+v, %v", r.sk, err)
	}
	r, err = parseConnRecord(connRecordBytes(kindUDPSend, familyINET, lo, lo, 5353, 53))
	if err != nil || r.sk.proto != protoUDP || r.sk.origin != originSend || isListener(r.sk) ||
		keyOf(r.sk) == keyOf(sock{proto: protoUDP, cookie: 42}) {
		t.Errorf("UDP send record: %+v, %v", r.sk, err)
	}
	for name, b := range map[string][]byte{
		"short":       make([]byte, 10),
		"kind":        connRecordBytes(9, familyINET, lo, lo, 1, 2),
		"family":      connRecordBytes(kindAccept, 3, lo, lo, 1, 2),
		"zero record": make([]byte, connRecordLen),
	} {
		if _, err := parseConnRecord(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzParseConnRecord(f *testing.F) {
	lo := netip.MustParseAddr("127.0.0.1")
	f.Add(connRecordBytes(kindConnect, familyINET, lo, lo, 40000, 80))
	f.Add(connRecordBytes(kindAccept, familyINET6, netip.MustParseAddr("::1"), netip.MustParseAddr("::1"), 22, 5000))
	f.Add(connRecordBytes(kindUDPConnect, familyINET, lo, lo, 40000, 53))
	f.Add(connRecordBytes(kindUDPSend, familyINET6, netip.MustParseAddr("::1"), netip.MustParseAddr("::1"), 40000, 53))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseConnRecord(b)
		if err == nil && (r.sk.origin == originDump || (r.sk.proto == protoUDP) != (r.kind == kindUDPConnect || r.kind == kindUDPSend)) {
			t.Fatalf("accepted record without an origin or with the wrong protocol: %+v", r.sk)
		}
	})
}
