package query

import (
	"sort"
	"strconv"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Kind is the type of a field's values.
type Kind int

// Field kinds.
const (
	KindString Kind = iota
	// KindInt fields compare as integers (pids, ports, sizes).
	KindInt
	// KindIP fields hold an address: "in" takes CIDRs as well as
	// addresses, "==" compares the parsed address.
	KindIP
	// KindTime is @timestamp: compared with RFC 3339 times.
	KindTime
	// KindList is a field with several values (process.args); an
	// operator matches when it matches any of them.
	KindList
)

func (k Kind) String() string {
	switch k {
	case KindInt:
		return "number"
	case KindIP:
		return "address"
	case KindTime:
		return "time"
	case KindList:
		return "list"
	}
	return "string"
}

// getter returns a field's value(s) in ev; ok is false when the event
// does not have the field.
type getter func(ev *ecs.Event) (vals []string, ok bool)

type field struct {
	kind Kind
	get  getter
}

func str(f func(ev *ecs.Event) string) getter {
	return func(ev *ecs.Event) ([]string, bool) {
		v := f(ev)
		if v == "" {
			return nil, false
		}
		return []string{v}, true
	}
}

func num(f func(ev *ecs.Event) (int64, bool)) getter {
	return func(ev *ecs.Event) ([]string, bool) {
		v, ok := f(ev)
		if !ok {
			return nil, false
		}
		return []string{strconv.FormatInt(v, 10)}, true
	}
}

func proc(f func(p *ecs.Process) string) getter {
	return str(func(ev *ecs.Event) string {
		if ev.Process == nil {
			return ""
		}
		return f(ev.Process)
	})
}

func parent(f func(p *ecs.Parent) string) getter {
	return str(func(ev *ecs.Event) string {
		if ev.Process == nil || ev.Process.Parent == nil {
			return ""
		}
		return f(ev.Process.Parent)
	})
}

func file(f func(p *ecs.File) string) getter {
	return str(func(ev *ecs.Event) string {
		if ev.File == nil {
			return ""
		}
		return f(ev.File)
	})
}

func endpoint(dst bool, port bool) getter {
	pick := func(ev *ecs.Event) *ecs.Endpoint {
		if dst {
			return ev.Destination
		}
		return ev.Source
	}
	if port {
		return num(func(ev *ecs.Event) (int64, bool) {
			e := pick(ev)
			if e == nil || e.Port == 0 {
				return 0, false
			}
			return int64(e.Port), true
		})
	}
	return str(func(ev *ecs.Event) string {
		if e := pick(ev); e != nil {
			return e.IP
		}
		return ""
	})
}

// fields maps every field a query may name to how it is read. user.* is
// the process's user, as ECS puts the acting user there.
var fields = map[string]field{
	"@timestamp": {KindTime, func(ev *ecs.Event) ([]string, bool) {
		if ev.Timestamp.IsZero() {
			return nil, false
		}
		return []string{ev.Timestamp.UTC().Format(time.RFC3339Nano)}, true
	}},
	"event.category": {KindString, str(func(ev *ecs.Event) string { return ev.Event.Category })},
	"event.type":     {KindString, str(func(ev *ecs.Event) string { return ev.Event.Type })},
	"event.action":   {KindString, str(func(ev *ecs.Event) string { return ev.Event.Action })},
	"event.module":   {KindString, str(func(ev *ecs.Event) string { return ev.Event.Module })},

	"process.pid": {KindInt, num(func(ev *ecs.Event) (int64, bool) {
		if ev.Process == nil || ev.Process.PID == 0 {
			return 0, false
		}
		return int64(ev.Process.PID), true
	})},
	"process.entity_id":         {KindString, proc(func(p *ecs.Process) string { return p.EntityID })},
	"process.executable":        {KindString, proc(func(p *ecs.Process) string { return p.Executable })},
	"process.name":              {KindString, proc(func(p *ecs.Process) string { return p.Name })},
	"process.command_line":      {KindString, proc(func(p *ecs.Process) string { return p.CommandLine })},
	"process.working_directory": {KindString, proc(func(p *ecs.Process) string { return p.WorkingDirectory })},
	"process.args": {KindList, func(ev *ecs.Event) ([]string, bool) {
		if ev.Process == nil || len(ev.Process.Args) == 0 {
			return nil, false
		}
		return ev.Process.Args, true
	}},
	"process.exit_code": {KindInt, num(func(ev *ecs.Event) (int64, bool) {
		if ev.Process == nil || ev.Process.ExitCode == nil {
			return 0, false
		}
		return int64(*ev.Process.ExitCode), true
	})},
	"process.user.id":   {KindString, proc(func(p *ecs.Process) string { return p.User.ID })},
	"process.user.name": {KindString, proc(func(p *ecs.Process) string { return p.User.Name })},
	"user.id":           {KindString, proc(func(p *ecs.Process) string { return p.User.ID })},
	"user.name":         {KindString, proc(func(p *ecs.Process) string { return p.User.Name })},
	"process.parent.pid": {KindInt, num(func(ev *ecs.Event) (int64, bool) {
		if ev.Process == nil || ev.Process.Parent == nil || ev.Process.Parent.PID == 0 {
			return 0, false
		}
		return int64(ev.Process.Parent.PID), true
	})},
	"process.parent.entity_id":    {KindString, parent(func(p *ecs.Parent) string { return p.EntityID })},
	"process.parent.executable":   {KindString, parent(func(p *ecs.Parent) string { return p.Executable })},
	"process.parent.name":         {KindString, parent(func(p *ecs.Parent) string { return p.Name })},
	"process.parent.command_line": {KindString, parent(func(p *ecs.Parent) string { return p.CommandLine })},

	"file.path":      {KindString, file(func(f *ecs.File) string { return f.Path })},
	"file.name":      {KindString, file(func(f *ecs.File) string { return f.Name })},
	"file.directory": {KindString, file(func(f *ecs.File) string { return f.Directory })},
	"file.type":      {KindString, file(func(f *ecs.File) string { return f.Type })},
	"file.mode":      {KindString, file(func(f *ecs.File) string { return f.Mode })},
	"file.uid":       {KindString, file(func(f *ecs.File) string { return f.UID })},
	"file.gid":       {KindString, file(func(f *ecs.File) string { return f.GID })},
	"file.owner":     {KindString, file(func(f *ecs.File) string { return f.Owner })},
	"file.hash.sha256": {KindString, file(func(f *ecs.File) string {
		if f.Hash == nil {
			return ""
		}
		return f.Hash.SHA256
	})},
	"file.size": {KindInt, num(func(ev *ecs.Event) (int64, bool) {
		if ev.File == nil || ev.File.Size == nil {
			return 0, false
		}
		return *ev.File.Size, true
	})},

	"source.ip":        {KindIP, endpoint(false, false)},
	"source.port":      {KindInt, endpoint(false, true)},
	"destination.ip":   {KindIP, endpoint(true, false)},
	"destination.port": {KindInt, endpoint(true, true)},

	"network.transport": {KindString, str(func(ev *ecs.Event) string {
		if ev.Network == nil {
			return ""
		}
		return ev.Network.Transport
	})},
	"network.type": {KindString, str(func(ev *ecs.Event) string {
		if ev.Network == nil {
			return ""
		}
		return ev.Network.Type
	})},
	"network.direction": {KindString, str(func(ev *ecs.Event) string {
		if ev.Network == nil {
			return ""
		}
		return ev.Network.Direction
	})},

	"host.hostname": {KindString, str(func(ev *ecs.Event) string {
		if ev.Host == nil {
			return ""
		}
		return ev.Host.Hostname
	})},
	"host.id": {KindString, str(func(ev *ecs.Event) string {
		if ev.Host == nil {
			return ""
		}
		return ev.Host.ID
	})},
}

// Fields lists the field names a query may use, sorted, with their kinds.
func Fields() map[string]Kind {
	out := make(map[string]Kind, len(fields))
	for name, f := range fields {
		out[name] = f.kind
	}
	return out
}

// FieldNames lists the field names a query may use, sorted.
func FieldNames() []string {
	out := make([]string, 0, len(fields))
	for name := range fields {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Value returns the values of a named field in ev (nil, false when the
// event lacks it or the name is unknown).
func Value(ev *ecs.Event, name string) ([]string, bool) {
	f, ok := fields[name]
	if !ok {
		return nil, false
	}
	return f.get(ev)
}
