package sensor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// rcvBufLen is the socket receive buffer asked for. The connector
	// drops events silently while its reader is slow; 8 MiB rides out
	// stalls of seconds under exec storms.
	rcvBufLen = 8 << 20
	// ackTimeout bounds the wait for the kernel to acknowledge the
	// subscription.
	ackTimeout = 2 * time.Second
)

// netlinkConn is a NETLINK_CONNECTOR socket subscribed to CN_IDX_PROC.
//
// It is read with poll(2) and recvfrom(2) on the reading goroutine's own
// thread rather than through the runtime's network poller: the kernel then
// wakes the reader directly, which keeps the delay between an exec and the
// reading of its /proc entry to tens of microseconds. Close wakes a
// blocked read through an eventfd.
type netlinkConn struct {
	fd, wake int
	rcvBuf   int
	bufNote  string
	// pending holds events that arrived while waiting for the ack.
	pending [][]byte
	// fds is wait's poll set, kept to spare an allocation per wait.
	fds [2]unix.PollFd

	// mu is held by read while it uses the descriptors, so that Close
	// closes them only once no read is using them.
	mu        sync.Mutex
	closed    bool
	closeOnce sync.Once
	closeErr  error

	clock wallClock
}

// openConnector opens the netlink process connector and subscribes to
// process events. It needs root or CAP_NET_ADMIN in the initial user
// namespace.
func openConnector() (connector, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("netlink process connector: create socket: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink process connector: create eventfd: %w", err)
	}
	c := &netlinkConn{fd: fd, wake: wake}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBufLen); err != nil {
		// Without CAP_NET_ADMIN, the kernel caps SO_RCVBUF at rmem_max.
		c.bufNote = fmt.Sprintf(" (SO_RCVBUFFORCE: %v)", err)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBufLen)
	}
	if n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
		c.rcvBuf = n / 2 // the kernel reports twice the size asked for
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		c.closeFDs()
		return nil, fmt.Errorf("netlink process connector: bind: %w", err)
	}
	if err := c.subscribe(); err != nil {
		c.closeFDs()
		return nil, fmt.Errorf("netlink process connector: %w", err)
	}
	return c, nil
}

// subscribe sends PROC_CN_MCAST_LISTEN and waits for the kernel's
// acknowledgement, which carries the errno of the request.
func (c *netlinkConn) subscribe() error {
	tag := uint32(os.Getpid())<<8 | 0x5a
	if err := c.send(procCnMcastListen, tag); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	deadline := time.Now().Add(ackTimeout)
	buf := make([]byte, readBufLen)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return errors.New("subscribe: no acknowledgement from the kernel")
		}
		n, err := c.recv(buf, left)
		if errors.Is(err, errOverrun) || errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		ev, err := parseProcEvent(buf[:n])
		if err == nil && ev.kind == procEventNone && ev.ack == tag+1 {
			if ev.ackErr != 0 {
				return fmt.Errorf("subscribe: %w", unix.Errno(ev.ackErr))
			}
			return nil
		}
		c.pending = append(c.pending, append([]byte(nil), buf[:n]...))
	}
}

// send sends a listen or ignore request to the kernel.
func (c *netlinkConn) send(op, tag uint32) error {
	return unix.Sendto(c.fd, listenMessage(op, tag), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

func (c *netlinkConn) read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, os.ErrClosed
	}
	if len(c.pending) > 0 {
		n := copy(b, c.pending[0])
		c.pending = c.pending[1:]
		return n, nil
	}
	return c.recv(b, -1)
}

// recv receives one datagram from the kernel, skipping any other sender.
// It waits at most timeout, forever if timeout is negative, and returns
// os.ErrClosed once Close has been called.
//
// It polls before it receives: the reader keeps up with the kernel and
// usually finds the socket empty, so polling first costs two system calls
// per datagram where receiving first costs three (the receive that finds
// nothing, the poll, the receive).
func (c *netlinkConn) recv(b []byte, timeout time.Duration) (int, error) {
	for {
		if err := c.wait(timeout); err != nil {
			return 0, err
		}
		n, from, err := recvfrom(c.fd, b)
		switch err {
		case nil:
			// Only the kernel speaks for the process connector.
			if from == 0 {
				return n, nil
			}
			continue
		case unix.EINTR, unix.EAGAIN:
			continue
		case unix.ENOBUFS:
			return 0, errOverrun
		default:
			return 0, fmt.Errorf("receive: %w", err)
		}
	}
}

// recvfrom receives one datagram without blocking and returns its length
// and the sender's port id (0 for the kernel). Unlike unix.Recvfrom, it
// allocates nothing.
func recvfrom(fd int, b []byte) (int, uint32, error) {
	var sa unix.RawSockaddrNetlink
	salen := uint32(unsafe.Sizeof(sa))
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(b)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&salen)))
	if errno != 0 {
		return 0, 0, errno
	}
	return int(n), sa.Pid, nil
}

// wait blocks until the socket is readable, Close is called or timeout
// passes.
func (c *netlinkConn) wait(timeout time.Duration) error {
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	c.fds = [2]unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}, {Fd: int32(c.wake), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(c.fds[:], ms)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return fmt.Errorf("poll: %w", err)
		case c.fds[1].Revents != 0:
			return os.ErrClosed
		case n == 0:
			return os.ErrDeadlineExceeded
		}
		return nil
	}
}

// startReader ties the reading goroutine to its thread for good (the
// thread exits with the goroutine, so the priority never reaches another
// goroutine) and makes it SCHED_FIFO: woken by an exec, the reader then
// preempts ordinary tasks, the new process included, instead of queueing
// behind them. The reader sleeps in poll(2) between events and blocks
// when the consumer of events falls behind, so it cannot starve the
// system; SCHED_FLAG_RESET_ON_FORK keeps threads it might spawn ordinary.
func (c *netlinkConn) startReader() string {
	runtime.LockOSThread()
	attr := unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 1, Flags: unix.SCHED_FLAG_RESET_ON_FORK}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Sprintf(", reader at normal priority (SCHED_FIFO: %v)", err)
	}
	return ", reader thread SCHED_FIFO"
}

// wallTime is called by the connector's one reader only.
func (c *netlinkConn) wallTime(ns uint64) time.Time { return c.clock.wall(ns) }

func (c *netlinkConn) bootTime() (time.Time, bool) { return bootTimeNow() }

// wallClock converts kernel CLOCK_MONOTONIC times to wall-clock times
// from one reading of both clocks, taken again when it is a second old
// (the wall clock can be set meanwhile), so that events do not each cost
// a system call: x/sys's ClockGettime does not go through the vDSO, and
// in an exec storm a clock reading per eBPF record was a fifth of the
// process sensor's time. The zero wallClock is ready; one is for one
// goroutine.
type wallClock struct {
	offset int64     // wall minus monotonic, in nanoseconds
	synced time.Time // when offset was read, zero when it could not be
}

// wallClockAge is how long a reading of the clocks serves.
const wallClockAge = time.Second

// wall converts ns, reading the clocks first when the last reading is
// too old; where CLOCK_MONOTONIC cannot be read, it is the time now.
func (c *wallClock) wall(ns uint64) time.Time {
	if c.synced.IsZero() || time.Since(c.synced) >= wallClockAge {
		var ts unix.Timespec
		now := time.Now()
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			c.synced = time.Time{}
			return now
		}
		c.offset, c.synced = now.UnixNano()-ts.Nano(), now
	}
	return time.Unix(0, c.offset+int64(ns))
}

// bootTimeNow returns the boot time with sub-second precision.
func bootTimeNow() (time.Time, bool) {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}, false
	}
	return now.Add(-time.Duration(ts.Nano())).UTC(), true
}

func (c *netlinkConn) describe() string {
	return fmt.Sprintf("netlink process connector, receive buffer %d KiB%s", c.rcvBuf>>10, c.bufNote)
}

func (c *netlinkConn) Close() error {
	c.closeOnce.Do(func() {
		// Tell the kernel one listener fewer; it keeps generating events
		// while it counts any.
		_ = c.send(procCnMcastIgnore, 0)
		// Wake a blocked read, then wait for it to let go.
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = unix.Write(c.wake, one[:])
		c.mu.Lock()
		defer c.mu.Unlock()
		c.closed = true
		c.closeErr = c.closeFDs()
	})
	return c.closeErr
}

func (c *netlinkConn) closeFDs() error {
	return errors.Join(unix.Close(c.fd), unix.Close(c.wake))
}
