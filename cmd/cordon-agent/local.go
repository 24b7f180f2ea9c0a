package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cordon-edr/cordon/agent"
	"github.com/cordon-edr/cordon/agent/localapi"
	"github.com/cordon-edr/cordon/agent/spool"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	state := fs.String("state", defaultState, "state `DIR` of the running agent")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := localapi.GetStatus(ctx, agent.SocketPath(*state))
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	conn := "disconnected"
	if st.Connected {
		conn = "connected since " + st.ConnectedSince.Local().Format(time.RFC3339)
	}
	fmt.Fprintf(tw, "agent\t%s\n", st.AgentID)
	fmt.Fprintf(tw, "version\t%s\n", st.Version)
	fmt.Fprintf(tw, "collector\t%s (%s)\n", st.Collector, conn)
	if st.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s\n", st.LastError)
	}
	fmt.Fprintf(tw, "isolated\t%v\n", st.Isolated)
	fmt.Fprintf(tw, "findings sent\t%d\n", st.FindingsSent)
	fmt.Fprintf(tw, "spool\t%s\n", spoolLine(st.Spool))
	fmt.Fprintf(tw, "rules loaded\t%d\n", st.Rules)
	if st.RulesVersion != "" {
		fmt.Fprintf(tw, "rules version\t%s (pushed by the collector)\n", st.RulesVersion)
	} else {
		fmt.Fprintf(tw, "rules version\tbuilt-in pack only\n")
	}
	if st.RulesError != "" {
		fmt.Fprintf(tw, "rules refused\t%s\n", st.RulesError)
	}
	if st.IocsVersion != "" {
		fmt.Fprintf(tw, "indicator set\t%s (%d indicators)\n", st.IocsVersion, st.Indicators)
	} else {
		fmt.Fprintf(tw, "indicator set\tnone\n")
	}
	if st.IocsError != "" {
		fmt.Fprintf(tw, "indicators refused\t%s\n", st.IocsError)
	}
	if r := st.Retro; r != nil {
		line := fmt.Sprintf("set %s, %d new indicators, %d events read, %d findings", r.Version, r.Indicators, r.Scanned, r.Findings)
		switch {
		case r.Finished.IsZero():
			line += ", running"
		case r.Error != "":
			line += ", failed: " + r.Error
		case r.Stopped != "":
			line += ", stopped: " + r.Stopped
		}
		fmt.Fprintf(tw, "retro-hunt\t%s\n", line)
	}
	self := fmt.Sprintf("cpu %.2f%% of a core over %s (budget %.2f%%), memory %.1f MiB (budget %.0f MiB)",
		st.Self.CPUPercent, st.Self.Window, st.Self.BudgetCPUPercent, float64(st.Self.RSSBytes)/(1<<20), float64(st.Self.BudgetRSSBytes)/(1<<20))
	if st.Self.OverBudget != "" {
		self += "; over budget: " + st.Self.OverBudget
	}
	if len(st.Self.Shed) > 0 {
		self += "; shed: " + strings.Join(st.Self.Shed, ", ")
	}
	if st.Self.Error != "" {
		self += "; " + st.Self.Error
	}
	fmt.Fprintf(tw, "self\t%s\n", self)
	if h := st.History; h != nil {
		oldest := "none"
		if !h.Oldest.IsZero() {
			oldest = "oldest " + h.Oldest.Local().Format(time.RFC3339)
		}
		line := fmt.Sprintf("%d events, %s of %s (%s on disk), %s, %d dropped, kept %s",
			h.Events, mib(h.Bytes), mib(h.MaxBytes), mib(h.DiskBytes), oldest, h.Dropped, h.MaxAge)
		if h.SkippedDiskFull > 0 || h.DiskLow {
			line += fmt.Sprintf("; %d skipped for lack of disk", h.SkippedDiskFull)
		}
		if h.DiskLow {
			line += fmt.Sprintf("; PAUSED: disk (%s free)", mib(int64(h.FreeBytes)))
		}
		fmt.Fprintf(tw, "history\t%s\n", line)
	} else {
		fmt.Fprintf(tw, "history\toff\n")
	}
	for _, s := range st.Sensors {
		line := fmt.Sprintf("%s: %d events, %d lost, %d dropped", s.Mode, s.Events, s.Lost, s.Dropped)
		if s.Reason != "" {
			line += " (" + s.Reason + ")"
		}
		fmt.Fprintf(tw, "sensor %s\t%s\n", s.Name, line)
	}
	return tw.Flush()
}

func cmdEvents(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("events", stderr)
	state := fs.String("state", defaultState, "state `DIR` of the running agent")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := localapi.Events(ctx, agent.SocketPath(*state), *follow, func(ev ecs.Event, raw []byte) error {
		var err error
		if *asJSON {
			_, err = fmt.Fprintf(stdout, "%s\n", raw)
		} else {
			_, err = fmt.Fprintln(stdout, describe(ev))
		}
		return err
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("events: %w", err)
	}
	return nil
}

// describe renders an event on one line for people.
func describe(ev ecs.Event) string {
	var b strings.Builder
	b.WriteString(ev.Timestamp.Local().Format("15:04:05.000"))
	b.WriteString(" " + ev.Event.Category + "/" + ev.Event.Type)
	if p := ev.Process; p != nil {
		fmt.Fprintf(&b, " pid=%d", p.PID)
		if p.User.Name != "" {
			b.WriteString(" user=" + p.User.Name)
		}
		if p.Executable != "" {
			b.WriteString(" exe=" + p.Executable)
		}
		if p.CommandLine != "" {
			fmt.Fprintf(&b, " cmd=%q", p.CommandLine)
		}
		if p.Parent != nil && p.Parent.Executable != "" {
			fmt.Fprintf(&b, " parent=%d:%s", p.Parent.PID, p.Parent.Executable)
		}
	}
	if f := ev.File; f != nil {
		b.WriteString(" file=" + f.Path)
	}
	if d := ev.Destination; d != nil {
		fmt.Fprintf(&b, " dst=%s:%d", d.IP, d.Port)
	}
	return b.String()
}

// spoolLine describes the spool: counts, drops per severity, and why it
// is full when it is.
func spoolLine(sp localapi.Spool) string {
	line := fmt.Sprintf("%d pending, %d dropped", sp.Pending, sp.Dropped)
	var sevs []string
	for _, sev := range []string{"low", "medium", "high", "critical"} {
		if n := sp.DroppedBySeverity[sev]; n > 0 {
			sevs = append(sevs, fmt.Sprintf("%s %d", sev, n))
		}
	}
	if len(sevs) > 0 {
		line += " (since start: " + strings.Join(sevs, ", ") + ")"
	}
	switch sp.Full {
	case "disk":
		dropped := "low and medium findings dropped"
		if sp.FreeBytes < spool.DefaultHardReserve {
			dropped = "every finding dropped"
		}
		line += fmt.Sprintf("; FULL: disk (%s free), %s", mib(int64(sp.FreeBytes)), dropped)
	case "count":
		line += "; FULL: count bound reached, less severe findings evicted"
	case "":
	default:
		line += "; FULL: " + sp.Full
	}
	if sp.CompactionWaiting {
		line += "; compaction waiting for disk space"
	}
	return line
}

func mib(n int64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }
