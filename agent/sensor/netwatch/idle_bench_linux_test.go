package netwatch

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdle runs the network sensor alone for CORDON_BENCH_IDLE (10 s
// by default) in its eBPF mode and in its sock_diag fallback, and reports
// the CPU the benchmark process used, as a share of one core, and the
// events it delivered per second (the host's own connections).
func BenchmarkIdle(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the eBPF mode needs root")
	}
	d := 10 * time.Second
	if v, err := time.ParseDuration(os.Getenv("CORDON_BENCH_IDLE")); err == nil && v > 0 {
		d = v
	}
	for _, mode := range []string{ModeSockDiag, ModeEBPF} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				s := New(Options{})
				if mode == ModeSockDiag {
					s.openCapture = func() (capture, error) { return nil, errors.New("off for the benchmark") }
				}
				stop := runBench(b, s)
				if m, reason := s.Mode(); m != mode {
					stop()
					b.Skipf("mode %s (%s), want %s", m, reason, mode)
				}
				time.Sleep(time.Second) // start-up is not idle
				ev0, cpu0, t0 := s.Stats().Events, cpuTime(b), time.Now()
				time.Sleep(d)
				elapsed, cpu, events := time.Since(t0), cpuTime(b)-cpu0, s.Stats().Events-ev0
				stop()
				b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "cpu_%core")
				b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
			}
		})
	}
}

// BenchmarkUDPSend measures one UDP datagram sent over loopback, from a
// connected socket (send) and from an unconnected one to the same peer
// (sendto), with no sensor running and with the sensor in its eBPF mode,
// whose UDP programs run at every send: the difference is what they add
// to each datagram of every process on the host.
func BenchmarkUDPSend(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the eBPF mode needs root")
	}
	for _, sensor := range []string{"none", ModeEBPF} {
		b.Run(sensor, func(b *testing.B) {
			if sensor == ModeEBPF {
				s := New(Options{Reconcile: time.Hour})
				defer runBench(b, s)()
				if m, reason := s.Mode(); m != ModeEBPF || strings.Contains(reason, "in part or not at all") {
					b.Skipf("mode %s (%s): no UDP programs", m, reason)
				}
			}
			peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer peer.Close()
			to := peer.LocalAddr().(*net.UDPAddr)
			msg := []byte("x")
			b.Run("send", func(b *testing.B) {
				conn, err := net.DialUDP("udp4", nil, to)
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				for b.Loop() {
					// A full receive queue drops the datagram after the
					// send path has run: the cost measured is the same.
					conn.Write(msg)
				}
			})
			b.Run("sendto", func(b *testing.B) {
				conn, err := net.ListenUDP("udp4", nil)
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				for b.Loop() {
					conn.WriteToUDP(msg, to)
				}
			})
		})
	}
}

// runBench runs s, its events discarded, until it has chosen its mode,
// and returns the function that stops it.
func runBench(b *testing.B, s *Sensor) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan ecs.Event, 1024)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	go func() {
		for range out {
		}
	}()
	for m, _ := s.Mode(); m == ""; m, _ = s.Mode() {
		time.Sleep(10 * time.Millisecond)
	}
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
		close(out)
	}
}
