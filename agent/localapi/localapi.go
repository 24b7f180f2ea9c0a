// Package localapi is the running agent's local control socket: a Unix
// socket in the state folder, readable by root only, over which
// `cordon-agent status` reads the agent's health and `cordon-agent events`
// reads its normalized events as the detectors see them.
package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// SocketName is the socket's file name in the state folder.
const SocketName = "agent.sock"

// Status is the agent's health.
type Status struct {
	AgentID        string    `json:"agent_id"`
	Version        string    `json:"version"`
	Collector      string    `json:"collector"`
	Connected      bool      `json:"connected"`
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
	FindingsSent   uint64    `json:"findings_sent"`
	Isolated       bool      `json:"isolated"`
	Spool          Spool     `json:"spool"`
	Sensors        []Sensor  `json:"sensors"`
	Rules          int       `json:"rules"`
	// RulesVersion is the version of the rule set pushed by the
	// collector that runs, empty for the built-in pack only; RulesError
	// says why the last pushed set was refused.
	RulesVersion string `json:"rules_version"`
	RulesError   string `json:"rules_error,omitempty"`
	// IocsVersion is the version of the indicator set matched, empty for
	// none; Indicators counts its indicators; IocsError is why the last
	// set was refused; Retro describes the last retro-hunt.
	IocsVersion string `json:"iocs_version"`
	Indicators  int    `json:"indicators"`
	IocsError   string `json:"iocs_error,omitempty"`
	Retro       *Retro `json:"retro_hunt,omitempty"`
	// EventsDropped counts events the local event stream could not hand to
	// a slow reader (the detectors never skip events).
	EventsDropped uint64 `json:"events_dropped"`
	// Self is the agent's own resource use against its budget.
	Self Self `json:"self"`
	// History is the local event history; absent when it is off.
	History *History `json:"history,omitempty"`
}

// Self is the agent's own CPU and memory use, watched against its budget,
// and the work it shed to stay within it.
type Self struct {
	// CPUPercent is the share of one core used over the last window.
	CPUPercent       float64 `json:"cpu_percent"`
	RSSBytes         uint64  `json:"rss_bytes"`
	BudgetCPUPercent float64 `json:"budget_cpu_percent"`
	BudgetRSSBytes   uint64  `json:"budget_rss_bytes"`
	// Window is the period CPU is averaged over ("1m0s").
	Window string `json:"window"`
	// OverBudget is "cpu", "memory" or "cpu and memory" while over
	// budget, empty otherwise.
	OverBudget string `json:"over_budget,omitempty"`
	// Shed lists the steps in force, in the order they were taken.
	Shed []string `json:"shed,omitempty"`
	// Error is why the agent could not read its own usage, if it cannot.
	Error string `json:"error,omitempty"`
}

// History is the event history's part of the status.
type History struct {
	Events int64 `json:"events"`
	// Bytes is the size held, the figure bounded by MaxBytes; DiskBytes
	// what the history takes on disk (they differ only while an older
	// agent's badger history is kept); Segments counts its files.
	Bytes     int64     `json:"bytes"`
	DiskBytes int64     `json:"disk_bytes"`
	Segments  int       `json:"segments"`
	Oldest    time.Time `json:"oldest,omitzero"`
	Newest    time.Time `json:"newest,omitzero"`
	// Dropped counts events not written because the writer fell behind.
	Dropped uint64 `json:"dropped"`
	// SkippedDiskFull counts events not written because the free space
	// was under the history's reserve (since the agent started); DiskLow
	// says it is under it now, FreeBytes is the free space last read.
	SkippedDiskFull uint64 `json:"skipped_disk_full"`
	DiskLow         bool   `json:"disk_low,omitempty"`
	FreeBytes       uint64 `json:"free_bytes,omitempty"`
	MaxAge          string `json:"max_age"`
	MaxBytes        int64  `json:"max_bytes"`
}

// Spool is the spool's part of the status.
type Spool struct {
	Pending int64 `json:"pending"`
	Dropped int64 `json:"dropped"`
	// DroppedBySeverity counts drops per severity since the agent started.
	DroppedBySeverity map[string]uint64 `json:"dropped_by_severity,omitempty"`
	// Full is why the spool refuses findings: "disk" (free space under
	// the reserve: low and medium findings dropped) or "count" (the
	// pending bound reached: less severe findings evicted); empty when
	// it takes any finding.
	Full string `json:"full,omitempty"`
	// FreeBytes is the free space of the state folder's filesystem, 0
	// when not known.
	FreeBytes uint64 `json:"free_bytes,omitempty"`
	// Compactions counts the compactions of the spool's database since
	// the agent started; CompactionWaiting says the last one is waiting
	// for free disk space (reads slow down meanwhile; nothing is lost).
	Compactions       uint64 `json:"compactions"`
	CompactionWaiting bool   `json:"compaction_waiting,omitempty"`
}

// Sensor is one sensor's part of the status.
type Sensor struct {
	Name   string `json:"name"`
	Mode   string `json:"mode"`
	Reason string `json:"reason,omitempty"`
	Events uint64 `json:"events"`
	Lost   uint64 `json:"lost"`
	// Dropped counts events the agent dropped because the queue to the
	// detectors was full.
	Dropped uint64 `json:"dropped"`
}

// Hub fans events out to local readers, keeping the most recent ones.
type Hub struct {
	mu      sync.Mutex
	ring    []ecs.Event
	next    int
	full    bool
	subs    map[chan ecs.Event]struct{}
	dropped uint64
}

// NewHub keeps the last keep events.
func NewHub(keep int) *Hub {
	return &Hub{ring: make([]ecs.Event, keep), subs: map[chan ecs.Event]struct{}{}}
}

// Publish records ev and hands it to every reader without blocking.
func (h *Hub) Publish(ev ecs.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ring) > 0 {
		h.ring[h.next] = ev
		h.next = (h.next + 1) % len(h.ring)
		h.full = h.full || h.next == 0
	}
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
			h.dropped++
		}
	}
}

// Dropped counts events a slow reader missed.
func (h *Hub) Dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// Subscribe returns the recent events and, when follow is set, a channel
// of the events that come after them.
func (h *Hub) Subscribe(follow bool) (recent []ecs.Event, ch <-chan ecs.Event, cancel func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.full {
		recent = append(recent, h.ring[h.next:]...)
	}
	recent = append(recent, h.ring[:h.next]...)
	if !follow {
		return recent, nil, func() {}
	}
	c := make(chan ecs.Event, 1024)
	h.subs[c] = struct{}{}
	return recent, c, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, c)
	}
}

// Server serves the socket.
type Server struct {
	path   string
	status func() Status
	hub    *Hub
	log    *slog.Logger
}

// NewServer returns a server for the socket at path.
func NewServer(path string, status func() Status, hub *Hub, log *slog.Logger) *Server {
	return &Server{path: path, status: status, hub: hub, log: log}
}

// Run serves until ctx ends and removes the socket.
func (s *Server) Run(ctx context.Context) error {
	_ = os.Remove(s.path) // left by an agent that crashed
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		return fmt.Errorf("opening local socket: %w", err)
	}
	defer os.Remove(s.path)
	if err := os.Chmod(s.path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("restricting local socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.status())
	})
	mux.HandleFunc("GET /events", s.events)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		srv.Close()
		<-errc
		return nil
	case err := <-errc:
		return fmt.Errorf("serving local socket: %w", err)
	}
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	follow := r.URL.Query().Get("follow") == "1"
	recent, ch, cancel := s.hub.Subscribe(follow)
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	var buf []byte
	var enc ecs.Encoder
	// add appends ev's line to buf; an event encoding/json could not
	// write either (a time past the year 9999) ends the stream.
	add := func(ev *ecs.Event) bool {
		var err error
		if buf, err = enc.Append(buf, ev); err != nil {
			s.log.Error("writing an event to a local reader", "err", err)
			return false
		}
		buf = append(buf, '\n')
		return true
	}
	for i := range recent {
		if !add(&recent[i]) {
			return
		}
		if len(buf) >= 64<<10 || i == len(recent)-1 {
			if _, err := w.Write(buf); err != nil {
				return
			}
			buf = buf[:0]
		}
	}
	if !follow {
		return
	}
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-ch:
			// What else has come is written with it, in one write: one
			// write per event cost the agent a tenth of its CPU in an
			// exec storm. A reader still gets each event at once when
			// none wait.
			ok := add(&ev)
			for n := 1; ok && n < followBatch; n++ {
				select {
				case ev = <-ch:
					ok = add(&ev)
					continue
				default:
				}
				break
			}
			if !ok {
				return
			}
			if _, err := w.Write(buf); err != nil {
				return
			}
			buf = buf[:0]
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}

// followBatch bounds the events a follow stream writes at once.
const followBatch = 256

// client returns an HTTP client that talks to the socket at path.
func client(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// ErrNotRunning is returned when no agent listens on the socket.
var ErrNotRunning = errors.New("no running agent")

func get(ctx context.Context, path, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://agent"+url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client(path).Do(req)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("opening %s: %w (the agent's socket is root's only)", path, err)
		}
		return nil, fmt.Errorf("%w on %s: %v", ErrNotRunning, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("agent answered %s", resp.Status)
	}
	return resp, nil
}

// GetStatus asks the agent listening on path for its status.
func GetStatus(ctx context.Context, path string) (Status, error) {
	var st Status
	resp, err := get(ctx, path, "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("reading agent status: %w", err)
	}
	return st, nil
}

// Events calls f for each event of the agent listening on path: the
// recent ones, then, with follow, each new one until ctx ends.
func Events(ctx context.Context, path string, follow bool, f func(ecs.Event, []byte) error) error {
	url := "/events"
	if follow {
		url += "?follow=1"
	}
	resp, err := get(ctx, path, url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var ev ecs.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("reading agent events: %w", err)
		}
		if err := f(ev, sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("reading agent events: %w", err)
	}
	return nil
}

// Retro is the last retro-hunt over the history for the indicators a new
// set added.
type Retro struct {
	Version    string    `json:"version"`
	Indicators int       `json:"indicators"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished,omitzero"`
	Scanned    int       `json:"scanned"`
	Findings   int       `json:"findings"`
	// Stopped says why the hunt ended early (its budget), empty when it
	// read everything.
	Stopped string `json:"stopped,omitempty"`
	Error   string `json:"error,omitempty"`
}
