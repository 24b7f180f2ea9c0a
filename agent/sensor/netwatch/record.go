package netwatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Kinds of the eBPF programs' records (bpf/conn.h: keep both in step).
const (
	kindConnect = 1
	kindAccept  = 2
	kindListen  = 3
	// A connected UDP socket's first datagram.
	kindUDPConnect = 4
	// A datagram sent to a peer it names, from an unconnected UDP
	// socket: reported once per socket and peer.
	kindUDPSend = 5
)

// connRecordLen is the size of struct conn in bpf/conn.h.
const connRecordLen = 80

// connRecord is one record of the eBPF programs: a TCP socket that
// completed a handshake or started listening, or a UDP socket that sent
// to a new peer, with the task that opened it where the program knows it.
type connRecord struct {
	kind uint32
	sk   sock
}

// parseConnRecord decodes one ring buffer record. A record of the wrong
// size, kind or address family is an error.
func parseConnRecord(b []byte) (connRecord, error) {
	if len(b) < connRecordLen {
		return connRecord{}, fmt.Errorf("connection record of %d bytes, want %d", len(b), connRecordLen)
	}
	ne := binary.NativeEndian
	r := connRecord{kind: ne.Uint32(b[8:])}
	switch r.kind {
	case kindConnect, kindAccept, kindListen, kindUDPConnect, kindUDPSend:
	default:
		return connRecord{}, fmt.Errorf("connection record of unknown kind %d", r.kind)
	}
	proto := uint8(protoTCP)
	if r.kind == kindUDPConnect || r.kind == kindUDPSend {
		proto = protoUDP
	}
	sk := sock{proto: proto, cookie: ne.Uint64(b[0:]), pid: int(ne.Uint32(b[12:])), uid: ne.Uint32(b[16:])}
	family := ne.Uint16(b[20:])
	sport, dport := ne.Uint16(b[22:]), ne.Uint16(b[24:])
	var src, dst netip.Addr
	switch family {
	case familyINET:
		src = netip.AddrFrom4([4]byte(b[32:36]))
		dst = netip.AddrFrom4([4]byte(b[48:52]))
	case familyINET6:
		src = netip.AddrFrom16([16]byte(b[32:48])).Unmap()
		dst = netip.AddrFrom16([16]byte(b[48:64])).Unmap()
	default:
		return connRecord{}, fmt.Errorf("connection record of unknown address family %d", family)
	}
	sk.family = uint8(family)
	sk.src = netip.AddrPortFrom(src, sport)
	sk.dst = netip.AddrPortFrom(dst, dport)
	switch r.kind {
	case kindListen:
		sk.state = stateListen
		sk.dst = netip.AddrPortFrom(dst, 0)
		sk.origin = originListen
	case kindConnect, kindUDPConnect:
		sk.state = stateEstablished
		sk.origin = originConnect
	case kindUDPSend:
		// The socket is not connected: its state stays.
		sk.state = stateClose
		sk.origin = originSend
	case kindAccept:
		sk.state = stateEstablished
		sk.origin = originAccept
	}
	comm := b[64:80]
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	sk.comm = string(comm)
	r.sk = sk
	return r, nil
}
