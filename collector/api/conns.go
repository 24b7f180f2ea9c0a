package api

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// ConnWatch follows the API's connections and counts those that closed
// before a single request reached a handler: clients cut off by the
// server's header timeout, or that hung up unserved. A slow client
// holding connections open shows here and in the log.
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

type connKey struct{}

// Install sets srv's ConnState and ConnContext hooks and wraps its
// handler. Call it once srv.Handler is set.
func (c *ConnWatch) Install(srv *http.Server) {
	srv.ConnContext = func(ctx context.Context, conn net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, conn)
	}
	srv.ConnState = c.state
	h := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if conn, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			c.mu.Lock()
			if _, open := c.served[conn]; open {
				c.served[conn] = true
			}
			c.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (c *ConnWatch) state(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case http.StateNew:
		c.served[conn] = false
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
