package sigma

import (
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// fieldID names a value of an ecs.Event that rules can read.
type fieldID uint8

const (
	fUnknown fieldID = iota
	fImage
	fCommandLine
	fProcessName
	fParentImage
	fParentCommandLine
	fParentName
	fCurrentDirectory
	fUser
	fUserID
	fProcessID
	fParentProcessID
	fTargetFilename
	fFileName
	fFileMode
	fFileOwner
	fFileHash
	fDestinationIP
	fDestinationPort
	fDestinationHostname
	fSourceIP
	fSourcePort
	fProtocol
	fInitiated
	fDirection
	fCategory
	fType
	fAction
	fHostname
	numFields
)

// fieldByName maps Sigma's field names and the ECS names onto fields.
var fieldByName = map[string]fieldID{
	"Image":               fImage,
	"CommandLine":         fCommandLine,
	"ParentImage":         fParentImage,
	"ParentCommandLine":   fParentCommandLine,
	"CurrentDirectory":    fCurrentDirectory,
	"User":                fUser,
	"LogonId":             fUserID,
	"ProcessId":           fProcessID,
	"ParentProcessId":     fParentProcessID,
	"TargetFilename":      fTargetFilename,
	"DestinationIp":       fDestinationIP,
	"DestinationPort":     fDestinationPort,
	"DestinationHostname": fDestinationHostname,
	"SourceIp":            fSourceIP,
	"SourcePort":          fSourcePort,
	"Protocol":            fProtocol,
	"Initiated":           fInitiated,
	"Computer":            fHostname,

	"process.executable":          fImage,
	"process.command_line":        fCommandLine,
	"process.name":                fProcessName,
	"process.parent.executable":   fParentImage,
	"process.parent.command_line": fParentCommandLine,
	"process.parent.name":         fParentName,
	"process.working_directory":   fCurrentDirectory,
	"process.user.name":           fUser,
	"process.user.id":             fUserID,
	"process.pid":                 fProcessID,
	"process.parent.pid":          fParentProcessID,
	"file.path":                   fTargetFilename,
	"file.name":                   fFileName,
	"file.mode":                   fFileMode,
	"file.owner":                  fFileOwner,
	"file.hash.sha256":            fFileHash,
	"destination.ip":              fDestinationIP,
	"destination.port":            fDestinationPort,
	"source.ip":                   fSourceIP,
	"source.port":                 fSourcePort,
	"network.transport":           fProtocol,
	"network.direction":           fDirection,
	"event.category":              fCategory,
	"event.type":                  fType,
	"event.action":                fAction,
	"host.hostname":               fHostname,
}

// route is a kind of event rules run on.
type route uint8

const (
	routeNone route = iota
	routeProcess
	routeFile
	routeFileDelete
	routeNetwork
	numRoutes
)

var routeNames = [numRoutes]string{"", "process", "file", "file_delete", "network"}

// routeOf returns the events a logsource applies to.
func routeOf(ls Logsource) route {
	if ls.Product != "" && ls.Product != "linux" {
		return routeNone
	}
	if ls.Service != "" {
		return routeNone
	}
	switch ls.Category {
	case "process_creation":
		return routeProcess
	case "file_event":
		return routeFile
	case "file_delete":
		return routeFileDelete
	case "network_connection":
		return routeNetwork
	case "":
		if ls.Product == "linux" {
			return routeProcess
		}
	}
	return routeNone
}

// eventRoute returns the route of an event.
func eventRoute(ev *ecs.Event) route {
	switch ev.Event.Category {
	case ecs.CategoryProcess:
		if ev.Event.Type == ecs.TypeStart && ev.Process != nil {
			return routeProcess
		}
	case ecs.CategoryFile:
		if ev.File == nil {
			return routeNone
		}
		switch ev.Event.Type {
		case ecs.TypeCreation, ecs.TypeChange:
			return routeFile
		case ecs.TypeDeletion:
			return routeFileDelete
		}
	case ecs.CategoryNetwork:
		if ev.Event.Type == ecs.TypeConnection || ev.Event.Type == ecs.TypeStart {
			return routeNetwork
		}
	}
	return routeNone
}

// keywordFields are the fields a keyword (field-less) search looks in,
// per route.
var keywordFields = [numRoutes][]fieldID{
	routeNone:       {fImage, fCommandLine, fParentImage, fParentCommandLine, fCurrentDirectory},
	routeProcess:    {fImage, fCommandLine, fParentImage, fParentCommandLine, fCurrentDirectory},
	routeFile:       {fTargetFilename, fImage, fCommandLine},
	routeFileDelete: {fTargetFilename, fImage, fCommandLine},
	routeNetwork:    {fImage, fCommandLine, fDestinationIP, fDestinationHostname},
}

// rawValue returns a field's value as the event holds it; buf receives
// numbers formatted as text. ok is false when the event has no value.
func rawValue(ev *ecs.Event, f fieldID, buf []byte) (v string, ok bool, out []byte) {
	p := ev.Process
	switch f {
	case fImage:
		if p != nil {
			v = p.Executable
		}
	case fCommandLine:
		if p != nil {
			v = p.CommandLine
		}
	case fProcessName:
		if p != nil {
			v = p.Name
		}
	case fParentImage:
		if p != nil && p.Parent != nil {
			v = p.Parent.Executable
		}
	case fParentCommandLine:
		if p != nil && p.Parent != nil {
			v = p.Parent.CommandLine
		}
	case fParentName:
		if p != nil && p.Parent != nil {
			v = p.Parent.Name
		}
	case fCurrentDirectory:
		if p != nil {
			v = p.WorkingDirectory
		}
	case fUser:
		if p != nil {
			v = p.User.Name
		}
	case fUserID:
		if p != nil {
			v = p.User.ID
		}
	case fProcessID:
		if p != nil && p.PID > 0 {
			return appendInt(buf, p.PID)
		}
	case fParentProcessID:
		if p != nil && p.Parent != nil && p.Parent.PID > 0 {
			return appendInt(buf, p.Parent.PID)
		}
	case fTargetFilename:
		if ev.File != nil {
			v = ev.File.Path
		}
	case fFileName:
		if ev.File != nil {
			v = ev.File.Name
		}
	case fFileMode:
		if ev.File != nil {
			v = ev.File.Mode
		}
	case fFileOwner:
		if ev.File != nil {
			v = ev.File.Owner
		}
	case fFileHash:
		if ev.File != nil && ev.File.Hash != nil {
			v = ev.File.Hash.SHA256
		}
	case fDestinationIP:
		if ev.Destination != nil {
			v = ev.Destination.IP
		}
	case fDestinationPort:
		if ev.Destination != nil && ev.Destination.Port > 0 {
			return appendInt(buf, ev.Destination.Port)
		}
	case fSourceIP:
		if ev.Source != nil {
			v = ev.Source.IP
		}
	case fSourcePort:
		if ev.Source != nil && ev.Source.Port > 0 {
			return appendInt(buf, ev.Source.Port)
		}
	case fProtocol:
		if ev.Network != nil {
			v = ev.Network.Transport
		}
	case fDirection:
		if ev.Network != nil {
			v = ev.Network.Direction
		}
	case fInitiated:
		if ev.Network != nil {
			switch ev.Network.Direction {
			case "egress", "outbound":
				v = "true"
			case "ingress", "inbound":
				v = "false"
			}
		}
	case fCategory:
		v = ev.Event.Category
	case fType:
		v = ev.Event.Type
	case fAction:
		v = ev.Event.Action
	case fHostname:
		if ev.Host != nil {
			v = ev.Host.Hostname
		}
	}
	return v, v != "", buf
}

// appendInt formats n into buf and returns a string that shares buf's
// memory (see evalCtx.arena).
func appendInt(buf []byte, n int) (string, bool, []byte) {
	start := len(buf)
	buf = strconv.AppendInt(buf, int64(n), 10)
	return bytesString(buf[start:]), true, buf
}

// bytesString views b as a string without copying. The bytes must not
// change while the string is in use: evalCtx only appends to its arena
// during an event and resets it before the next.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// evalCtx holds one event's field values, fetched and lower-cased at
// most once per event, in memory reused from event to event.
type evalCtx struct {
	ev    *ecs.Event
	route route
	gen   uint32
	// per field: generation at which raw/low were filled
	rawGen [numFields]uint32
	lowGen [numFields]uint32
	raw    [numFields]string
	low    [numFields]string
	has    [numFields]bool
	arena  []byte
}

func (c *evalCtx) reset(ev *ecs.Event, r route) {
	c.ev = ev
	c.route = r
	c.gen++
	if c.gen == 0 { // wrapped: forget every cached value
		c.rawGen = [numFields]uint32{}
		c.lowGen = [numFields]uint32{}
		c.gen = 1
	}
	c.arena = c.arena[:0]
}

// value returns field f, lower-cased when lower is set; ok is false
// when the event has no value for it.
func (c *evalCtx) value(f fieldID, lower bool) (string, bool) {
	if c.rawGen[f] != c.gen {
		var v string
		var ok bool
		if f != fUnknown {
			v, ok, c.arena = rawValue(c.ev, f, c.arena)
		}
		c.raw[f], c.has[f], c.rawGen[f] = v, ok, c.gen
	}
	if !lower {
		return c.raw[f], c.has[f]
	}
	if c.lowGen[f] != c.gen {
		c.low[f] = c.lower(c.raw[f])
		c.lowGen[f] = c.gen
	}
	return c.low[f], c.has[f]
}

// lower lower-cases s: ASCII into the arena, anything else through
// strings.ToLower (which allocates, and is rare on Linux).
func (c *evalCtx) lower(s string) string {
	hasUpper := false
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
		if 'A' <= b && b <= 'Z' {
			hasUpper = true
		}
	}
	if !hasUpper {
		return s
	}
	start := len(c.arena)
	for i := 0; i < len(s); i++ {
		b := s[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		c.arena = append(c.arena, b)
	}
	return bytesString(c.arena[start:])
}
