package export

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/ingest"
)

// Kinds of event a sink can ask for.
const (
	KindIncidentOpened  = "incident.opened"
	KindIncidentUpdated = "incident.updated"
	KindIncidentClosed  = "incident.closed"
	KindFinding         = "finding"
	KindCommandQueued   = "command.requested"
	KindCommandFinished = "command.finished"
)

// Kinds lists every event kind.
var Kinds = []string{KindIncidentOpened, KindIncidentUpdated, KindIncidentClosed, KindFinding,
	KindCommandQueued, KindCommandFinished}

// Event is one thing to deliver: an incident change or a finding. It is
// what the outbox stores, so it holds everything a format needs.
type Event struct {
	// ID is unique per event: receivers use it to drop redeliveries.
	ID   string    `json:"id"`
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
	// Incident is set for incident.* events.
	Incident *incident.Incident `json:"incident,omitempty"`
	// Finding is set for finding events; for incident.opened and for
	// the incident.updated a new finding caused, it is that finding.
	Finding *ingest.Finding `json:"finding,omitempty"`
	// Command is set for command.* events.
	Command *command.Command `json:"command,omitempty"`
	// Hosts names the agents of the incident or finding.
	Hosts []Host `json:"hosts,omitempty"`
}

// Host is an agent with its hostname.
type Host struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// drill reports whether e comes from a drill.
func (e *Event) drill() bool {
	switch {
	case e.Incident != nil:
		return e.Incident.Drill
	case e.Command != nil:
		return e.Command.Action == command.ActionDrill
	}
	return e.Finding != nil && e.Finding.Drill
}

// hostName returns the hostname of agent id, or id.
func (e *Event) hostName(id string) string {
	for _, h := range e.Hosts {
		if h.ID == id && h.Name != "" {
			return h.Name
		}
	}
	return id
}

// Observables are what an analyst pivots on: file hashes, addresses,
// hostnames and users, collected from an event's finding evidence.
type Observables struct {
	Hashes    []string
	IPs       []string
	Hostnames []string
	Users     []string
}

func (e *Event) observables() Observables {
	var o Observables
	for _, h := range e.Hosts {
		if h.Name != "" {
			o.Hostnames = append(o.Hostnames, h.Name)
		}
	}
	if e.Incident != nil {
		o.Users = append(o.Users, e.Incident.AffectedUsers...)
	}
	if e.Finding != nil {
		// Each event alone, and only the fields used, so that one odd
		// event or field loses nothing else.
		var evs []json.RawMessage
		json.Unmarshal(e.Finding.Evidence, &evs)
		for _, raw := range evs {
			var ev evidence
			if json.Unmarshal(raw, &ev) != nil {
				continue
			}
			o.Hashes = appendSet(o.Hashes, ev.File.Hash.SHA256)
			o.IPs = appendSet(o.IPs, ev.Source.IP)
			o.IPs = appendSet(o.IPs, ev.Destination.IP)
			o.Users = appendSet(o.Users, ev.Process.User.Name)
		}
	}
	for _, s := range []*[]string{&o.Hashes, &o.IPs, &o.Hostnames, &o.Users} {
		slices.Sort(*s)
		*s = slices.Compact(*s)
	}
	return o
}

// evidence holds the fields of an ECS event (protocol/ecs) that make
// observables.
type evidence struct {
	File struct {
		Hash struct {
			SHA256 string `json:"sha256"`
		} `json:"hash"`
	} `json:"file"`
	Source      struct{ IP string } `json:"source"`
	Destination struct{ IP string } `json:"destination"`
	Process     struct {
		User struct {
			Name string `json:"name"`
		} `json:"user"`
	} `json:"process"`
}

func appendSet(s []string, v string) []string {
	if v == "" {
		return s
	}
	return append(s, v)
}

// isCommand reports whether kind is a command.* kind.
func isCommand(kind string) bool {
	return kind == KindCommandQueued || kind == KindCommandFinished
}
