package netwatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Protocol, family and state numbers from the kernel's uapi headers.
const (
	protoTCP = 6
	protoUDP = 17

	familyINET  = 2
	familyINET6 = 10

	// TCP states (include/net/tcp_states.h); UDP reuses them:
	// stateEstablished for a connected socket, stateClose otherwise.
	stateEstablished = 1
	stateSynSent     = 2
	stateSynRecv     = 3
	stateFinWait1    = 4
	stateFinWait2    = 5
	stateTimeWait    = 6
	stateClose       = 7
	stateCloseWait   = 8
	stateLastAck     = 9
	stateListen      = 10
	stateClosing     = 11
	stateNewSynRecv  = 12

	nlmsgError       = 2
	nlmsgDone        = 3
	sockDiagByFamily = 20

	nlmFRequest = 0x1
	nlmFDump    = 0x300

	nlmsgHdrLen     = 16
	inetDiagReqLen  = 56
	inetDiagMsgLen  = 72
	inetDiagSockLen = 48
)

// sock is one socket from a dump.
type sock struct {
	proto  uint8
	family uint8
	state  uint8
	src    netip.AddrPort
	dst    netip.AddrPort
	uid    uint32
	inode  uint32
	cookie uint64
	// pid is the owner when the dump names it (not sock_diag); 0 when
	// unknown.
	pid int
	// origin is how the eBPF program saw the socket start, originDump
	// for a socket from a dump.
	origin uint8
	// comm is the owner's command name as the kernel had it, from the
	// eBPF program.
	comm string
}

// Socket origins.
const (
	originDump = iota
	originConnect
	originAccept
	originListen
	// A datagram from an unconnected UDP socket to a peer it named.
	originSend
)

// diagRequest builds an inet_diag dump request for all sockets of one
// family and protocol in the given states (a bit mask of 1<<state).
func diagRequest(seq uint32, family, proto uint8, states uint32) []byte {
	b := make([]byte, nlmsgHdrLen+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], sockDiagByFamily)
	ne.PutUint16(b[6:], nlmFRequest|nlmFDump)
	ne.PutUint32(b[8:], seq)
	r := b[nlmsgHdrLen:]
	r[0] = family
	r[1] = proto
	ne.PutUint32(r[4:], states)
	return b
}

// errDiag is a netlink error answer to a dump request.
type errDiag struct{ errno int32 }

func (e errDiag) Error() string {
	return "sock_diag: kernel answered errno " + strconv.Itoa(int(-e.errno))
}

// parseDiag parses one datagram of a sock_diag dump answer for protocol
// proto, appending the sockets it holds to dst. done reports the end of
// the dump. Messages of other types are skipped; a truncated or
// malformed message is an error.
func parseDiag(b []byte, proto uint8, dst []sock) (out []sock, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return dst, false, fmt.Errorf("sock_diag: %d bytes left, shorter than a message header", len(b))
		}
		n := int(ne.Uint32(b[0:]))
		typ := ne.Uint16(b[4:])
		if n < nlmsgHdrLen || n > len(b) {
			return dst, false, fmt.Errorf("sock_diag: message length %d out of range (%d bytes left)", n, len(b))
		}
		body := b[nlmsgHdrLen:n]
		switch typ {
		case nlmsgDone:
			return dst, true, nil
		case nlmsgError:
			if len(body) < 4 {
				return dst, false, errors.New("sock_diag: truncated error message")
			}
			if errno := int32(ne.Uint32(body)); errno != 0 {
				return dst, false, errDiag{errno}
			}
		case sockDiagByFamily:
			s, err := parseDiagMsg(body, proto)
			if err != nil {
				return dst, false, err
			}
			dst = append(dst, s)
		}
		// Messages are aligned to 4 bytes.
		n = (n + 3) &^ 3
		if n > len(b) {
			n = len(b)
		}
		b = b[n:]
	}
	return dst, false, nil
}

// parseDiagMsg parses one inet_diag_msg.
func parseDiagMsg(m []byte, proto uint8) (sock, error) {
	if len(m) < inetDiagMsgLen {
		return sock{}, fmt.Errorf("sock_diag: inet_diag_msg of %d bytes, want at least %d", len(m), inetDiagMsgLen)
	}
	ne := binary.NativeEndian
	s := sock{proto: proto, family: m[0], state: m[1]}
	id := m[4 : 4+inetDiagSockLen]
	sport := binary.BigEndian.Uint16(id[0:])
	dport := binary.BigEndian.Uint16(id[2:])
	var src, dst netip.Addr
	switch s.family {
	case familyINET:
		src = netip.AddrFrom4([4]byte(id[4:8]))
		dst = netip.AddrFrom4([4]byte(id[20:24]))
	case familyINET6:
		src = netip.AddrFrom16([16]byte(id[4:20])).Unmap()
		dst = netip.AddrFrom16([16]byte(id[20:36])).Unmap()
	default:
		return sock{}, fmt.Errorf("sock_diag: unknown address family %d", s.family)
	}
	s.src = netip.AddrPortFrom(src, sport)
	s.dst = netip.AddrPortFrom(dst, dport)
	s.cookie = uint64(ne.Uint32(id[40:])) | uint64(ne.Uint32(id[44:]))<<32
	rest := m[4+inetDiagSockLen:]
	// expires, rqueue, wqueue, uid, inode
	s.uid = ne.Uint32(rest[12:])
	s.inode = ne.Uint32(rest[16:])
	return s, nil
}

// parseSocketLink returns the inode of a /proc/PID/fd link to a socket,
// "socket:[12345]".
func parseSocketLink(link string) (uint32, bool) {
	rest, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(rest, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}
