// Package process kills, suspends and resumes processes on the agent's
// host, refusing targets it must not touch: pid 1, kernel threads, the
// agent itself and its ancestors, and a configurable protected list. A
// target named by its entity id (process.entity_id) is signalled only if
// the pid still belongs to that process, so a reused pid is never hit.
package process

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Action is what to do to the target.
type Action string

// Actions.
const (
	Kill    Action = "kill"
	Suspend Action = "suspend"
	Resume  Action = "resume"
)

// Request names a target and what to do to it.
type Request struct {
	Action Action
	PID    int
	// EntityID, when set, must be the target's current entity id.
	EntityID string
	// Tree extends the action to every descendant of the target.
	Tree bool
}

// ParseRequest reads a request from command arguments: pid (required),
// entity_id and tree (true or false).
func ParseRequest(action string, args map[string]string) (Request, error) {
	r := Request{Action: Action(action), EntityID: strings.TrimSpace(args["entity_id"])}
	switch r.Action {
	case Kill, Suspend, Resume:
	default:
		return r, fmt.Errorf("unknown process action %q", action)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(args["pid"]))
	if err != nil || pid <= 0 {
		return r, fmt.Errorf("args.pid: want a process id above 0, got %q", args["pid"])
	}
	r.PID = pid
	if t, ok := args["tree"]; ok && t != "" {
		if r.Tree, err = strconv.ParseBool(t); err != nil {
			return r, fmt.Errorf("args.tree: want true or false, got %q", t)
		}
	}
	return r, nil
}

// Info is what the checks need to know about a process.
type Info struct {
	PID        int
	PPID       int
	Exe        string
	Comm       string
	StartTicks uint64
	// Kernel is set for kernel threads.
	Kernel bool
	// State is the one-letter state of /proc/PID/stat (R, S, T, Z, ...).
	State byte
}

// ErrRefused wraps every refusal to touch a target.
var ErrRefused = errors.New("refused")

// Policy holds what must never be touched.
type Policy struct {
	// Self is the agent's pid; Ancestors its parent chain up to pid 1.
	Self      int
	Ancestors []int
	// Protected lists executables (full paths) or process names that are
	// never signalled.
	Protected []string
}

// Check refuses targets the policy protects.
func (p Policy) Check(in Info) error {
	switch {
	case in.PID == 1:
		return fmt.Errorf("%w: pid 1 (%s) is the init process", ErrRefused, in.Comm)
	case in.Kernel:
		return fmt.Errorf("%w: pid %d (%s) is a kernel thread", ErrRefused, in.PID, in.Comm)
	case in.PID == p.Self:
		return fmt.Errorf("%w: pid %d is the agent itself", ErrRefused, in.PID)
	case slices.Contains(p.Ancestors, in.PID):
		return fmt.Errorf("%w: pid %d (%s) is an ancestor of the agent", ErrRefused, in.PID, in.Comm)
	}
	for _, prot := range p.Protected {
		if prot == "" {
			continue
		}
		if (strings.Contains(prot, "/") && in.Exe == prot) || (!strings.Contains(prot, "/") && (filepath.Base(in.Exe) == prot || in.Comm == prot)) {
			return fmt.Errorf("%w: pid %d (%s) is protected by the agent's configuration (%q)", ErrRefused, in.PID, orComm(in), prot)
		}
	}
	return nil
}

func orComm(in Info) string {
	if in.Exe != "" {
		return in.Exe
	}
	return in.Comm
}
