package gateway

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/cordon-edr/cordon/protocol"
)

// Registry is what the gateway needs to know about agents.
type Registry interface {
	// Authorize is called during the TLS handshake with the agent id taken
	// from the client certificate's common name and the certificate itself;
	// an error (unknown or revoked agent) refuses the handshake.
	Authorize(agentID string, cert *x509.Certificate) error
	// Connected records a successful hello; Heartbeat each heartbeat;
	// Disconnected when the control stream ends.
	Connected(ctx context.Context, agentID string, hello *protocol.Hello, remote string) error
	Heartbeat(ctx context.Context, agentID string, hb *protocol.Heartbeat) error
	Disconnected(agentID string)
}

// Enroller admits new agents.
type Enroller interface {
	// Redeem consumes one use of an enrollment token and registers a new
	// agent with the given facts and tags (the token's tags, overridden by
	// tags the agent asked for), returning the new agent id. issue is
	// called with that id to sign the agent's certificate before anything
	// is stored, so a failed signature leaves no agent behind.
	Redeem(ctx context.Context, token string, host *protocol.HostFacts, tags map[string]string,
		issue func(agentID string) (certDER []byte, notAfter time.Time, err error)) (agentID string, certDER []byte, err error)
}

// Ingest stores findings durably and exactly once.
type Ingest interface {
	// Append stores the batch durably before it returns; findings whose id
	// is already stored are counted as duplicates and left untouched.
	Append(ctx context.Context, agentID string, findings []*protocol.Finding) (stored, duplicates int, err error)
}

// Commands is the collector's durable command queue.
type Commands interface {
	// Pending returns the agent's commands not yet finished nor expired,
	// oldest first (delivered ones included: delivery is at least once).
	Pending(ctx context.Context, agentID string) ([]*protocol.Command, error)
	// Delivered marks a command as written to the agent's control stream.
	Delivered(ctx context.Context, commandID string) error
	// Finished records the agent's result.
	Finished(ctx context.Context, agentID string, res *protocol.CommandResult) error
	// Notify has f called whenever a command is queued for agentID,
	// until stop is called; f must not block (see wake.Waiters.Notify).
	Notify(agentID string, f func()) (stop func())
}

// Rules is the store of rule sets pushed to the fleet.
type Rules interface {
	// Current returns the set every agent should run; nil when none was
	// pushed.
	Current(ctx context.Context) (*protocol.RuleSet, error)
	// Notify has f called whenever a set is pushed, until stop is
	// called; f must not block (see wake.Waiters.Notify).
	Notify(f func()) (stop func())
	// Result records an agent's answer to a set it was sent.
	Result(ctx context.Context, agentID string, res *protocol.RuleSetResult) error
}

// Indicators is the collector's store of pushed indicator sets.
type Indicators interface {
	// Current returns the current set, nil when none was pushed.
	Current(ctx context.Context) (*protocol.IndicatorSet, error)
	// Notify has f called whenever a set is pushed, until stop is
	// called; f must not block (see wake.Waiters.Notify).
	Notify(f func()) (stop func())
	// Result records an agent's answer to a set it was sent.
	Result(ctx context.Context, agentID string, res *protocol.IndicatorSetResult) error
}

// Health hears of each agent's signs of life, so that an agent that falls
// silent without saying goodbye, or whose sensors degrade, becomes a
// finding.
type Health interface {
	// Seen is called on each hello.
	Seen(agentID string)
	// Heartbeat is called on each heartbeat.
	Heartbeat(agentID string, hb *protocol.Heartbeat)
	// Goodbye is called when the agent announces a clean stop.
	Goodbye(agentID, reason string)
}

// Hunts is the collector's hunt store.
type Hunts interface {
	// Pending returns the hunts the agent has not answered and that have
	// not expired, oldest first.
	Pending(ctx context.Context, agentID string) ([]*protocol.HuntRequest, error)
	// Delivered records that a hunt was written to the agent's stream.
	Delivered(ctx context.Context, agentID, huntID string) error
	// Answered records the agent's answer.
	Answered(ctx context.Context, agentID string, res *protocol.HuntResult) error
	// Notify has f called whenever a hunt is created for agentID, until
	// stop is called; f must not block (see wake.Waiters.Notify).
	Notify(agentID string, f func()) (stop func())
}
