package netwatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// capture is the eBPF program's ring buffer of connection records.
type capture interface {
	// read returns the next record, waiting until deadline at most
	// (errDeadline), or the records already there when it has passed.
	// The record is valid until the next read.
	read(deadline time.Time) ([]byte, error)
	// lostRecords returns how many records the ring had no room for.
	lostRecords() (uint64, error)
	// udpUnavailable says why UDP flows are not all in the ring (those
	// missing are then reported by the periodic dump only); nil when
	// they are.
	udpUnavailable() error
	// interrupt ends a read in progress, and makes later ones fail.
	interrupt()
	close() error
}

var errDeadline = errors.New("no record before the deadline")

// runEBPF reports TCP connections and listeners, and UDP flows, from
// the eBPF programs as they happen, and every reconcile interval reads
// the socket table for bound UDP sockets and for what the ring lost. A
// socket is reported once: by its record or by the dump, whichever comes
// first, told apart by the socket cookie both carry.
func (s *Sensor) runEBPF(ctx context.Context, impl osImpl, c capture, out chan<- ecs.Event) error {
	defer func() {
		if err := c.close(); err != nil {
			s.log.Debug("network sensor: closing the eBPF program", logError, err)
		}
	}()
	stop := context.AfterFunc(ctx, c.interrupt)
	defer stop()

	// The program runs already: what opens while the table is read is in
	// the ring, and skipped as known when it is read.
	known := map[key]struct{}{}
	cur, err := impl.sockets(ctx, nil)
	if err != nil {
		s.lost.Add(1)
		s.log.Warn("network sensor: cannot read the socket table", logError, err)
	}
	for _, sk := range cur {
		known[keyOf(sk)] = struct{}{}
	}
	if err := c.udpUnavailable(); err != nil {
		s.log.Warn("network sensor: some UDP flows only from the periodic socket table dump", logError, err)
		s.setMode(ModeEBPF, fmt.Sprintf("TCP connections and listeners from eBPF at sock:inet_sock_set_state; UDP flows from eBPF in part or not at all (%v); netlink sock_diag every %s for UDP and anything missed", err, s.opts.Reconcile))
	} else {
		s.setMode(ModeEBPF, fmt.Sprintf("TCP connections and listeners from eBPF at sock:inet_sock_set_state, UDP flows at sock:sock_send_length and the cgroup sendmsg hooks; netlink sock_diag every %s for bound UDP sockets and anything missed", s.opts.Reconcile))
	}

	// Owners of listening ports, for accepted connections: they complete
	// in softirq context, where the current task is not the owner.
	owners := map[uint16]int{}
	var lostSeen uint64
	// handle reports one record unless its socket is known. It returns
	// false when ctx is done.
	handle := func(b []byte, seen map[key]struct{}) bool {
		r, err := parseConnRecord(b)
		if err != nil {
			s.log.Debug("network sensor: bad eBPF record", logError, err)
			return true
		}
		sk := r.sk
		k := keyOf(sk)
		if seen != nil {
			seen[k] = struct{}{}
		}
		if _, dup := known[k]; dup {
			return true
		}
		known[k] = struct{}{}
		switch sk.origin {
		case originListen:
			owners[sk.src.Port()] = sk.pid
		case originAccept:
			sk.pid = s.listenerOwner(impl, owners, sk.src.Port())
		}
		return s.emit(ctx, impl, time.Now(), ModeEBPF, sk, nil, out)
	}

	next := time.Now().Add(s.reconcileEvery())
	for {
		b, err := c.read(next)
		if err == nil {
			if !handle(b, nil) {
				return nil
			}
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, errDeadline) {
			return fmt.Errorf("reading the connection ring buffer: %w", err)
		}
		next = time.Now().Add(s.reconcileEvery())
		if n, err := c.lostRecords(); err != nil {
			s.log.Debug("network sensor: lost record count unreadable", logError, err)
		} else if n > lostSeen {
			s.lost.Add(n - lostSeen)
			s.log.Warn("network sensor: the eBPF ring buffer was full, records were dropped", "lost", n)
			lostSeen = n
		}
		cur, err = impl.sockets(ctx, cur[:0])
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.lost.Add(1)
			s.log.Warn("network sensor: cannot read the socket table", logError, err)
			continue
		}
		// The record of every connection the dump holds is in the ring by
		// now: report those first, so that the dump does not.
		drained := map[key]struct{}{}
		for {
			b, err := c.read(time.Time{}.Add(1))
			if errors.Is(err, errDeadline) {
				break
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("reading the connection ring buffer: %w", err)
			}
			if !handle(b, drained) {
				return nil
			}
		}
		news, nextKnown := diff(known, cur)
		// Sockets reported since the dump but not in it stay known until
		// the next one.
		for k := range drained {
			nextKnown[k] = struct{}{}
		}
		known = nextKnown
		if !s.report(ctx, impl, ModeEBPF, news, listeners(cur), out) {
			return nil
		}
	}
}

// listenerOwner returns the owner of the TCP listener on port, reading
// the listening sockets and their owners when the cache does not know
// it; 0 when none is found.
func (s *Sensor) listenerOwner(impl osImpl, owners map[uint16]int, port uint16) int {
	if pid, ok := owners[port]; ok && pid != 0 {
		return pid
	}
	ls, err := impl.listeners(nil)
	if err != nil {
		s.log.Debug("network sensor: cannot read the listening sockets", logError, err)
		return 0
	}
	var inodes []uint32
	for _, l := range ls {
		if l.pid != 0 {
			owners[l.src.Port()] = l.pid
		} else if l.inode != 0 {
			inodes = append(inodes, l.inode)
		}
	}
	if len(inodes) > 0 {
		byInode := impl.owners(inodes)
		for _, l := range ls {
			if pid := byInode[l.inode]; pid != 0 {
				owners[l.src.Port()] = pid
			}
		}
	}
	return owners[port]
}
