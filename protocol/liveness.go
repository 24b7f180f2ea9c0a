package protocol

import (
	"fmt"
	"time"
)

// Liveness of a connection between agent and collector. Each side closes
// the connection when it has heard nothing from the other for the idle
// timeout (QUIC's max_idle_timeout: the lower of the two sides' values
// applies to both), and sends a keep-alive PING when it has heard nothing
// for the keep-alive period, so a quiet but healthy link never reaches
// the timeout. A link that went silent is then noticed between one idle
// timeout and one idle timeout plus one keep-alive period after it died.
//
// The defaults cost one PING and its acknowledgement (under 70 bytes on
// the wire each) per agent every 5 s when nothing else is sent: 2,000
// packets a second each way for 10,000 agents.
const (
	DefaultIdleTimeout = 15 * time.Second
	DefaultKeepAlive   = 5 * time.Second
)

// Bounds of the liveness settings.
const (
	MinIdleTimeout = 3 * time.Second
	MaxIdleTimeout = 10 * time.Minute
	MinKeepAlive   = time.Second
)

// CheckLiveness reports what is wrong with an idle timeout and keep-alive
// period, naming the setting at fault ("idle_timeout" or "keepalive").
func CheckLiveness(idle, keepAlive time.Duration) (key string, err error) {
	switch {
	case idle < MinIdleTimeout || idle > MaxIdleTimeout:
		return "idle_timeout", fmt.Errorf("%s is not between %s and %s", idle, MinIdleTimeout, MaxIdleTimeout)
	case keepAlive < MinKeepAlive:
		return "keepalive", fmt.Errorf("%s is under %s", keepAlive, MinKeepAlive)
	case keepAlive > idle/2:
		return "keepalive", fmt.Errorf("%s is more than half of idle_timeout %s: a quiet healthy link would time out", keepAlive, idle)
	}
	return "", nil
}
