package identity

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout: no recent network activity" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestRetryable(t *testing.T) {
	eperm := &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendmsg", syscall.EPERM)}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"handshake timeout", timeoutErr{}, true},
		{"wrapped timeout", fmt.Errorf("enrolling: %w", timeoutErr{}), true},
		{"sendmsg EPERM", eperm, true},
		{"wrapped EPERM", fmt.Errorf("dialing: %w", eperm), true},
		{"EPERM as quic-go reports it", errors.New("INTERNAL_ERROR (local): write udp [::]:54379->10.104.7.2:7443: sendmsg: operation not permitted"), true},
		{"refused", &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvmsg", syscall.ECONNREFUSED)}, false},
		{"certificate", errors.New("tls: bad certificate"), false},
		{"cancelled", context.Canceled, false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("%s: retryable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
