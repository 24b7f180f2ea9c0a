// Package service installs and controls the Cordon binaries as OS
// services through github.com/kardianos/service: systemd units with the
// hardening each needs on Linux, and otherwise whatever the machine runs
// (SysV init, launchd, the Windows service manager). The same unit text is
// what the Linux packages ship.
package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/template"

	kservice "github.com/kardianos/service"
)

// Spec describes one Cordon service.
type Spec struct {
	// Name is the service's and the binary's name.
	Name        string
	DisplayName string
	Description string
	// Unit is the systemd unit template: kardianos's template data
	// (.Path, .Arguments, .Description) with its cmd and cmdEscape
	// functions.
	Unit string
	// User is the account a systemd service runs as; empty for root.
	User string
}

// Agent is cordon-agent's service.
var Agent = Spec{
	Name:        "cordon-agent",
	DisplayName: "Cordon agent",
	Description: "Cordon endpoint agent: host sensors, detection and containment",
	Unit:        agentUnit,
}

// Collector is cordon-collector's service.
var Collector = Spec{
	Name:        "cordon-collector",
	DisplayName: "Cordon collector",
	Description: "Cordon collector: enrollment, ingest, incidents and the REST API",
	Unit:        collectorUnit,
	User:        "cordon",
}

// Actions are the verbs Control takes.
var Actions = []string{"install", "uninstall", "start", "stop", "status"}

// The systemd units. The agent runs as root but keeps only the
// capabilities its sensors and containment use; the collector runs as its
// own user with the file system read-only but its state and log folders.
const agentUnit = `[Unit]
Description={{.Description}}
Documentation=https://github.com/cordon-edr/cordon/blob/main/docs/deployment.md
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart={{.Path|cmdEscape}}{{range .Arguments}} {{.|cmd}}{{end}}
EnvironmentFile=-/etc/default/cordon-agent
EnvironmentFile=-/etc/sysconfig/cordon-agent
Restart=on-failure
RestartSec=5s
# Root, limited to what the agent uses: CAP_NET_ADMIN for the process
# connector and nftables isolation; CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN,
# CAP_SYS_RESOURCE and CAP_IPC_LOCK for eBPF exec capture (older kernels);
# CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH to read /proc and hash any file;
# CAP_KILL to kill and suspend; CAP_DAC_OVERRIDE, CAP_FOWNER and
# CAP_CHOWN to move files into and out of quarantine.
User=root
CapabilityBoundingSet=CAP_NET_ADMIN CAP_BPF CAP_PERFMON CAP_SYS_ADMIN CAP_SYS_RESOURCE CAP_IPC_LOCK CAP_SYS_PTRACE CAP_DAC_READ_SEARCH CAP_KILL CAP_DAC_OVERRIDE CAP_FOWNER CAP_CHOWN
AmbientCapabilities=CAP_NET_ADMIN CAP_BPF CAP_PERFMON CAP_SYS_ADMIN CAP_SYS_RESOURCE CAP_IPC_LOCK CAP_SYS_PTRACE CAP_DAC_READ_SEARCH CAP_KILL CAP_DAC_OVERRIDE CAP_FOWNER CAP_CHOWN
NoNewPrivileges=yes
StateDirectory=cordon-agent
StateDirectoryMode=0700
UMask=0077
LimitNOFILE=65536
LimitMEMLOCK=infinity
OOMScoreAdjust=-500

[Install]
WantedBy=multi-user.target
`

const collectorUnit = `[Unit]
Description={{.Description}}
Documentation=https://github.com/cordon-edr/cordon/blob/main/docs/deployment.md
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart={{.Path|cmdEscape}}{{range .Arguments}} {{.|cmd}}{{end}}
EnvironmentFile=-/etc/default/cordon-collector
EnvironmentFile=-/etc/sysconfig/cordon-collector
Restart=on-failure
RestartSec=5s
User=cordon
Group=cordon
StateDirectory=cordon
StateDirectoryMode=0700
LogsDirectory=cordon
LogsDirectoryMode=0750
WorkingDirectory=/var/lib/cordon
ReadWritePaths=/var/lib/cordon /var/log/cordon
UMask=0077
# Nothing but binding a port below 1024, should the configuration ask.
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
AmbientCapabilities=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
SystemCallArchitectures=native
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`

// funcs are kardianos's template functions, for rendering units the
// same way it does.
var funcs = template.FuncMap{
	"cmd":       func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` },
	"cmdEscape": func(s string) string { return strings.ReplaceAll(s, " ", `\x20`) },
}

// SystemdUnit renders spec's unit for the binary at path started with
// args, as the packages ship it.
func SystemdUnit(spec Spec, path string, args []string) (string, error) {
	t, err := template.New(spec.Name).Funcs(funcs).Parse(spec.Unit)
	if err != nil {
		return "", fmt.Errorf("parsing the %s unit: %w", spec.Name, err)
	}
	var b bytes.Buffer
	data := struct {
		Description, Path string
		Arguments         []string
	}{spec.Description, path, args}
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("rendering the %s unit: %w", spec.Name, err)
	}
	return b.String(), nil
}

// Args returns the arguments the service runs the binary with: run, and
// the configuration file when one was named (absolute, as services do not
// start in the folder of the command that installed them).
func Args(configPath string) ([]string, error) {
	args := []string{"run"}
	if configPath != "" {
		abs, err := filepath.Abs(configPath)
		if err != nil {
			return nil, fmt.Errorf("configuration path: %w", err)
		}
		args = append(args, "--config", abs)
	}
	return args, nil
}

func (spec Spec) config(args []string) *kservice.Config {
	return &kservice.Config{
		Name:        spec.Name,
		DisplayName: spec.DisplayName,
		Description: spec.Description,
		Arguments:   args,
		Option: kservice.KeyValue{
			"SystemdScript": spec.Unit,
			"Restart":       "on-failure",
			// launchd and the Windows service manager: start at boot.
			"RunAtLoad":              true,
			"OnFailure":              "restart",
			"OnFailureDelayDuration": "5s",
			"DelayedAutoStart":       false,
		},
	}
}

// ErrNotInstalled is returned by Control when the service is not
// installed with the machine's service manager.
var ErrNotInstalled = errors.New("not installed")

// Control performs action (one of Actions) on spec's service and returns
// what to tell the user. args are the arguments an installed service
// runs the binary with.
func Control(spec Spec, action string, args []string) (string, error) {
	s, err := kservice.New(program{}, spec.config(args))
	if err != nil {
		return "", fmt.Errorf("%s service: %w", spec.Name, err)
	}
	platform := s.Platform()
	switch action {
	case "install":
		if err := checkUser(spec, platform); err != nil {
			return "", err
		}
		if err := s.Install(); err != nil {
			return "", fmt.Errorf("installing %s with %s: %w", spec.Name, platform, err)
		}
		return fmt.Sprintf("installed %s with %s; start it with: %s service start", spec.Name, platform, spec.Name), nil
	case "uninstall":
		_ = s.Stop()
		if err := s.Uninstall(); err != nil {
			return "", fmt.Errorf("uninstalling %s from %s: %w", spec.Name, platform, err)
		}
		return fmt.Sprintf("uninstalled %s from %s", spec.Name, platform), nil
	case "start":
		if err := s.Start(); err != nil {
			return "", fmt.Errorf("starting %s with %s: %w", spec.Name, platform, err)
		}
		return fmt.Sprintf("started %s", spec.Name), nil
	case "stop":
		if err := s.Stop(); err != nil {
			return "", fmt.Errorf("stopping %s with %s: %w", spec.Name, platform, err)
		}
		return fmt.Sprintf("stopped %s", spec.Name), nil
	case "status":
		if unit := packagedUnit(spec.Name); unit != "" && platform != "linux-systemd" {
			return "", fmt.Errorf("%s is %w with %s, this machine's service manager: the systemd unit %s is installed but systemd is not running here", spec.Name, ErrNotInstalled, platform, unit)
		}
		st, err := s.Status()
		if errors.Is(err, kservice.ErrNotInstalled) || (err != nil && platform == "unix-systemv" && !exists("/etc/init.d/"+spec.Name)) {
			return "", fmt.Errorf("%s is %w with %s, this machine's service manager (install it with: %s service install)", spec.Name, ErrNotInstalled, platform, spec.Name)
		}
		if err != nil {
			return "", fmt.Errorf("status of %s with %s: %w", spec.Name, platform, err)
		}
		switch st {
		case kservice.StatusRunning:
			return fmt.Sprintf("%s: running (%s)", spec.Name, platform), nil
		case kservice.StatusStopped:
			return fmt.Sprintf("%s: stopped (%s)", spec.Name, platform), nil
		}
		return fmt.Sprintf("%s: status unknown (%s)", spec.Name, platform), nil
	}
	return "", fmt.Errorf("service: unknown action %q (want %s)", action, strings.Join(Actions, ", "))
}

// packagedUnit returns the path of a systemd unit for name installed by
// a package, or "".
func packagedUnit(name string) string {
	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system", "/etc/systemd/system"} {
		if p := filepath.Join(dir, name+".service"); exists(p) {
			return p
		}
	}
	return ""
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// program is what kardianos runs under the Windows service manager;
// Control only needs a value.
type program struct {
	run  func(ctx context.Context) error
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}
}

func (p program) Start(kservice.Service) error { return nil }
func (p program) Stop(kservice.Service) error  { return nil }

// windowsProgram runs fn until the service manager stops the service.
type windowsProgram struct{ *program }

func (p windowsProgram) Start(kservice.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.stop, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		if err := p.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			p.log.Error("stopped on an error", "err", err)
			os.Exit(1) // the service manager's recovery restarts us
		}
	}()
	return nil
}

func (p windowsProgram) Stop(kservice.Service) error {
	p.stop()
	<-p.done
	return nil
}

// Run runs fn until SIGINT or SIGTERM or, under the Windows service
// manager, until it stops the service.
func Run(spec Spec, log *slog.Logger, fn func(ctx context.Context) error) error {
	if runtime.GOOS == "windows" && !kservice.Interactive() {
		p := windowsProgram{&program{run: fn, log: log}}
		s, err := kservice.New(p, spec.config(nil))
		if err != nil {
			return fmt.Errorf("%s service: %w", spec.Name, err)
		}
		return s.Run()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := fn(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
