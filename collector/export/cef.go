package export

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cordon-edr/cordon/collector/ingest"
)

// cef renders ev as one ArcSight Common Event Format line. The mapping is
// documented in docs/exports.md.
func cef(ev *Event) string {
	var sig, name string
	var sev int
	var ext [][2]string
	add := func(k, v string) {
		if v != "" {
			ext = append(ext, [2]string{k, v})
		}
	}
	if isCommand(ev.Kind) {
		sig, name, sev = cefCommand(ev, add)
	} else if ev.Kind == KindFinding {
		f := ev.Finding
		sig, name, sev = f.Rule.ID, ruleTitle(f), cefSeverity(f.Severity)
		if sig == "" {
			sig = "finding"
		}
		add("rt", strconv.FormatInt(ms(f.DetectedAt), 10))
		add("start", strconv.FormatInt(ms(f.ObservedAt), 10))
		add("cat", ev.Kind)
		add("externalId", f.ID)
		add("dvchost", ev.hostName(f.AgentID))
		add("deviceExternalId", f.AgentID)
		add("msg", f.Summary)
		add("cs1Label", "techniques")
		add("cs1", strings.Join(f.Attack.Techniques, ","))
		add("cs2Label", "tactics")
		add("cs2", strings.Join(f.Attack.Tactics, ","))
		add("cs3Label", "incidentId")
		add("cs3", f.IncidentID)
		add("cs4Label", "drill")
		add("cs4", strconv.FormatBool(f.Drill))
		add("cs5Label", "severity")
		add("cs5", f.Severity)
		o := ev.observables()
		if len(o.Hashes) > 0 {
			add("fileHash", o.Hashes[0])
		}
		if len(o.Users) > 0 {
			add("suser", o.Users[0])
		}
	} else {
		in := ev.Incident
		sig, name, sev = ev.Kind, in.Title, cefPriority(in.Priority)
		add("rt", strconv.FormatInt(ms(in.UpdatedAt), 10))
		add("start", strconv.FormatInt(ms(in.DetectedAt), 10))
		if !in.ClosedAt.IsZero() {
			add("end", strconv.FormatInt(ms(in.ClosedAt), 10))
		}
		add("cat", ev.Kind)
		add("externalId", in.ID)
		hosts := make([]string, len(in.AffectedHosts))
		for i, h := range in.AffectedHosts {
			hosts[i] = ev.hostName(h)
		}
		add("dvchost", strings.Join(hosts, ","))
		add("msg", in.Title)
		add("duser", in.Assignee)
		add("cs1Label", "status")
		add("cs1", string(in.Status))
		add("cs2Label", "priority")
		add("cs2", in.Priority)
		add("cs3Label", "type")
		add("cs3", in.Type)
		add("cs4Label", "drill")
		add("cs4", strconv.FormatBool(in.Drill))
		add("cs5Label", "affectedUsers")
		add("cs5", strings.Join(in.AffectedUsers, ","))
		add("cn1Label", "findings")
		add("cn1", strconv.Itoa(len(in.FindingIDs)))
		add("cn2Label", "impact")
		add("cn2", strconv.Itoa(in.Impact))
		add("cn3Label", "urgency")
		add("cn3", strconv.Itoa(in.Urgency))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CEF:0|Cordon|Cordon EDR|1.0|%s|%s|%d|", cefHeader(sig), cefHeader(name), sev)
	for i, kv := range ext {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(cefValue(kv[1]))
	}
	return b.String()
}

var (
	cefHeaderEsc = strings.NewReplacer(`\`, `\\`, `|`, `\|`, "\r", " ", "\n", " ")
	cefValueEsc  = strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\r\n", `\n`, "\n", `\n`, "\r", `\r`)
)

// cefHeader escapes a header field: backslash and pipe; line breaks
// are not allowed there and become spaces.
func cefHeader(s string) string { return cefHeaderEsc.Replace(s) }

// cefValue escapes an extension value: backslash, equals and line
// breaks.
func cefValue(s string) string { return cefValueEsc.Replace(s) }

func cefSeverity(sev string) int {
	switch sev {
	case ingest.SeverityLow:
		return 3
	case ingest.SeverityMedium:
		return 5
	case ingest.SeverityHigh:
		return 8
	case ingest.SeverityCritical:
		return 10
	}
	return 0
}

func cefPriority(p string) int {
	switch p {
	case "P1":
		return 10
	case "P2":
		return 8
	case "P3":
		return 5
	case "P4":
		return 3
	}
	return 1
}
