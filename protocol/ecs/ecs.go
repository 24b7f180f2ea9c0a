// Package ecs holds Cordon's normalized event: one observation by a
// sensor, with field names from the Elastic Common Schema. Sensors produce
// it, detectors read it, findings carry it as evidence, and
// `cordon-agent events` prints it, so the JSON form is part of the
// user-facing contract.
package ecs

import (
	"strconv"
	"time"
)

// Event categories and types used by Cordon's sensors.
const (
	CategoryProcess = "process"
	CategoryFile    = "file"
	CategoryNetwork = "network"

	TypeStart      = "start"
	TypeEnd        = "end"
	TypeCreation   = "creation"
	TypeChange     = "change"
	TypeDeletion   = "deletion"
	TypeConnection = "connection"
)

// ActionRenamed is the event.action of a file renamed away (event.type
// change, file.path the old name); the new name arrives as a creation.
const ActionRenamed = "renamed"

// Network directions (network.direction).
const (
	DirectionIngress = "ingress"
	DirectionEgress  = "egress"
)

// Event is one observation.
type Event struct {
	Timestamp   time.Time `json:"@timestamp"`
	Event       Meta      `json:"event"`
	Process     *Process  `json:"process,omitempty"`
	File        *File     `json:"file,omitempty"`
	Source      *Endpoint `json:"source,omitempty"`
	Destination *Endpoint `json:"destination,omitempty"`
	Network     *Network  `json:"network,omitempty"`
	Host        *Host     `json:"host,omitempty"`
}

// Meta is the event.* group.
type Meta struct {
	Category string `json:"category"`
	Type     string `json:"type"`
	Action   string `json:"action,omitempty"`
	// Module names the sensor mode that saw the event, e.g. "netlink".
	Module string `json:"module,omitempty"`
}

// Process is the process.* group.
type Process struct {
	PID              int       `json:"pid"`
	EntityID         string    `json:"entity_id,omitempty"`
	Executable       string    `json:"executable,omitempty"`
	Name             string    `json:"name,omitempty"`
	CommandLine      string    `json:"command_line,omitempty"`
	Args             []string  `json:"args,omitempty"`
	WorkingDirectory string    `json:"working_directory,omitempty"`
	Start            time.Time `json:"start,omitzero"`
	User             User      `json:"user,omitzero"`
	Parent           *Parent   `json:"parent,omitempty"`
	// Ancestry lists the ancestors beyond the parent, nearest first
	// (Cordon's extension of ECS).
	Ancestry []Parent `json:"ancestry,omitempty"`
	ExitCode *int     `json:"exit_code,omitempty"`
}

// Parent is a reference to another process (process.parent.*).
type Parent struct {
	PID         int    `json:"pid"`
	EntityID    string `json:"entity_id,omitempty"`
	Executable  string `json:"executable,omitempty"`
	Name        string `json:"name,omitempty"`
	CommandLine string `json:"command_line,omitempty"`
}

// User is the *.user.* group.
type User struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// File is the file.* group.
type File struct {
	Path      string `json:"path"`
	Name      string `json:"name,omitempty"`
	Directory string `json:"directory,omitempty"`
	// Type is "file", "dir" or "symlink" (or "other").
	Type string `json:"type,omitempty"`
	Size *int64 `json:"size,omitempty"`
	Hash *Hash  `json:"hash,omitempty"`
	// Mode is the permission bits in octal with the setuid, setgid and
	// sticky bits, e.g. "4755" for a setuid executable.
	Mode  string `json:"mode,omitempty"`
	UID   string `json:"uid,omitempty"`
	GID   string `json:"gid,omitempty"`
	Owner string `json:"owner,omitempty"`
}

// Hash is the file.hash.* group.
type Hash struct {
	SHA256 string `json:"sha256,omitempty"`
}

// Endpoint is source.* or destination.*.
type Endpoint struct {
	IP   string `json:"ip,omitempty"`
	Port int    `json:"port,omitempty"`
}

// Network is the network.* group.
type Network struct {
	Transport string `json:"transport,omitempty"`
	// Type is "ipv4" or "ipv6".
	Type      string `json:"type,omitempty"`
	Direction string `json:"direction,omitempty"`
}

// Host is the host.* group.
type Host struct {
	Hostname string `json:"hostname,omitempty"`
	ID       string `json:"id,omitempty"`
}

// EntityID returns the process.entity_id for a process: unique per
// process lifetime because it joins the boot id, the pid and the start
// time in clock ticks since boot, so a reused pid never aliases.
func EntityID(bootID string, pid int, startTicks uint64) string {
	return bootID + "-" + strconv.Itoa(pid) + "-" + strconv.FormatUint(startTicks, 10)
}
