package uplink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/cordon-edr/cordon/protocol"
)

// ErrNotConnected is returned by Ping when there is no session.
var ErrNotConnected = errors.New("not connected to the collector")

func (c *Client) setConn(conn *quic.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
}

// Ping makes one round trip with the collector over the current
// connection: it opens a stream, sends an empty finding batch and waits
// for the collector's acknowledgement, which the collector sends only
// after reading the batch through its ingest path. Isolation uses it to
// prove that the collector channel survives the firewall rules.
func (c *Client) Ping(ctx context.Context) error {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return ErrNotConnected
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("opening a stream to the collector: %w", err)
	}
	defer func() {
		st.CancelRead(protocol.CodeShutdown)
		st.Close()
	}()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	} else {
		st.SetDeadline(time.Now().Add(10 * time.Second))
	}
	if err := protocol.NewFrameWriter(st, 0).Write(&protocol.Frame{Body: &protocol.Frame_FindingBatch{FindingBatch: &protocol.FindingBatch{}}}); err != nil {
		return fmt.Errorf("sending the round-trip batch: %w", err)
	}
	f, err := protocol.NewFrameReader(st, 0).Read()
	if err != nil {
		return fmt.Errorf("waiting for the collector's answer: %w", err)
	}
	if f.GetBatchAck() == nil {
		return fmt.Errorf("collector answered the round trip with %T", f.GetBody())
	}
	return nil
}
