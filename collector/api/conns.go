package api

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// ConnWatch follows the API's connections (as http.Server.ConnState) and
// counts those that closed before sending one complete request: clients
// cut off by the server's header timeout, or that hung up unserved. A
// slow client holding connections open shows here and in the log.
type ConnWatch struct {
	log      *slog.Logger
	mu       sync.Mutex
	served   map[net.Conn]bool
	unserved atomic.Uint64
}

// NewConnWatch returns a ConnWatch logging to log.
func NewConnWatch(log *slog.Logger) *ConnWatch {
	return &ConnWatch{log: log, served: map[net.Conn]bool{}}
}

// State is the http.Server.ConnState hook.
func (c *ConnWatch) State(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case http.StateNew:
		c.served[conn] = false
	case http.StateActive:
		c.served[conn] = true
	case http.StateClosed, http.StateHijacked:
		served, known := c.served[conn]
		delete(c.served, conn)
		if known && !served && st == http.StateClosed {
			c.unserved.Add(1)
			c.log.Warn("API connection closed without a complete request", "remote", conn.RemoteAddr().String())
		}
	}
}

// Unserved is the number of connections closed without a request.
func (c *ConnWatch) Unserved() uint64 { return c.unserved.Load() }
