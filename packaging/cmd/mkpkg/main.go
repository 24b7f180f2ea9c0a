// Mkpkg builds Cordon's .deb and .rpm packages with nfpm from binaries
// already built for linux:
//
//	mkpkg --bin dist/linux-amd64 --arch amd64 --version v1.2.3 --out dist
//
// The cordon-agent package holds the agent, its configuration (kept on
// upgrade) and its systemd unit; cordon-collector holds the collector,
// cordonctl, its configuration and unit. The maintainer scripts enroll,
// start, stop and purge (packaging/scripts). Files carry the build date
// (SOURCE_DATE_EPOCH), so the same inputs give the same packages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager

	"github.com/cordon-edr/cordon/packaging/service"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mkpkg:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(1)
	}
}

// Options say what to build.
type Options struct {
	// Root is the source tree (for packaging/etc and packaging/scripts).
	Root string
	// Bin holds the linux binaries for Arch.
	Bin     string
	Arch    string
	Version string
	Commit  string
	// Date stamps every file and the packages themselves.
	Date     time.Time
	Out      string
	Formats  []string
	Packages []string
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkpkg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.StringVar(&o.Root, "root", ".", "source tree `DIR`")
	fs.StringVar(&o.Bin, "bin", "", "`DIR` with the linux binaries")
	fs.StringVar(&o.Arch, "arch", "amd64", "target `ARCH` (GOARCH)")
	fs.StringVar(&o.Version, "version", "dev", "`VERSION` (git describe)")
	fs.StringVar(&o.Commit, "commit", "unknown", "`COMMIT`")
	fs.StringVar(&o.Out, "out", "dist", "output `DIR`")
	formats := fs.String("formats", "deb,rpm", "package `FORMATS`")
	packages := fs.String("packages", "agent,collector", "`PACKAGES` to build")
	epoch := fs.String("date", os.Getenv("SOURCE_DATE_EPOCH"), "build date as Unix `SECONDS` (default SOURCE_DATE_EPOCH)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Bin == "" {
		return errors.New("--bin DIR is required")
	}
	secs, err := strconv.ParseInt(*epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("--date %q: want Unix seconds (set SOURCE_DATE_EPOCH)", *epoch)
	}
	o.Date = time.Unix(secs, 0).UTC()
	o.Formats = strings.Split(*formats, ",")
	o.Packages = strings.Split(*packages, ",")
	paths, err := Build(o)
	for _, p := range paths {
		fmt.Fprintln(stdout, p)
	}
	return err
}

// Build writes the packages and returns their paths.
func Build(o Options) ([]string, error) {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", o.Out, err)
	}
	units, err := os.MkdirTemp("", "cordon-units-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(units)
	var out []string
	for _, name := range o.Packages {
		info, err := packageInfo(o, name, units)
		if err != nil {
			return out, err
		}
		for _, format := range o.Formats {
			p, err := write(info, format, o.Out)
			if err != nil {
				return out, fmt.Errorf("%s %s: %w", info.Name, format, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// PackageVersion turns a git-describe version into one deb and rpm order
// correctly: v1.2.3 stays 1.2.3 (nfpm splits a prerelease); a bare
// commit becomes 0.0.0+git<date>.<commit>, newer for a later commit.
func PackageVersion(version, commit string, date time.Time) string {
	if semverish.MatchString(version) {
		return version
	}
	c := commit
	if len(c) > 12 {
		c = c[:12]
	}
	v := fmt.Sprintf("0.0.0+git%s.%s", date.UTC().Format("20060102150405"), c)
	if strings.HasSuffix(version, "-dirty") {
		v += ".dirty"
	}
	return v
}

var semverish = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+`)

func packageInfo(o Options, name, units string) (*nfpm.Info, error) {
	var (
		spec     service.Spec
		binaries []string
		conf     = &files.ContentFileInfo{Mode: 0o600, Owner: "root", Group: "root"}
		scripts  nfpm.Scripts
		desc     string
	)
	script := func(s string) string { return filepath.Join(o.Root, "packaging", "scripts", s) }
	switch name {
	case "agent":
		spec, binaries = service.Agent, []string{"cordon-agent"}
		desc = "Cordon endpoint agent: process, file and network sensors, local detection, a durable spool and containment, reporting to a Cordon collector."
		scripts = nfpm.Scripts{PostInstall: script("agent-postinstall.sh"), PreRemove: script("agent-preremove.sh"), PostRemove: script("agent-postremove.sh")}
	case "collector":
		spec, binaries = service.Collector, []string{"cordon-collector", "cordonctl"}
		conf.Mode, conf.Group = 0o640, "cordon"
		desc = "Cordon collector: enrolls agents, ingests their findings, correlates incidents and serves the REST API and web console; with cordonctl."
		scripts = nfpm.Scripts{PreInstall: script("collector-preinstall.sh"), PostInstall: script("collector-postinstall.sh"), PreRemove: script("collector-preremove.sh"), PostRemove: script("collector-postremove.sh")}
	default:
		return nil, fmt.Errorf("unknown package %q (want agent or collector)", name)
	}
	unit, err := service.SystemdUnit(spec, "/usr/bin/"+binaries[0], []string{"run"})
	if err != nil {
		return nil, err
	}
	unitPath := filepath.Join(units, spec.Name+".service")
	if err := os.WriteFile(unitPath, []byte(unit), 0o644); err != nil {
		return nil, err
	}
	conf.MTime = o.Date
	contents := files.Contents{
		{Source: filepath.Join(o.Root, "packaging", "etc", name+".yaml"), Destination: "/etc/cordon/" + name + ".yaml", Type: files.TypeConfigNoReplace, FileInfo: conf},
		{Source: unitPath, Destination: "/usr/lib/systemd/system/" + spec.Name + ".service", FileInfo: &files.ContentFileInfo{Mode: 0o644, MTime: o.Date}},
	}
	for _, b := range binaries {
		src := filepath.Join(o.Bin, b)
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("binary for %s: %w (build it for linux/%s first)", spec.Name, err, o.Arch)
		}
		contents = append(contents, &files.Content{Source: src, Destination: "/usr/bin/" + b, FileInfo: &files.ContentFileInfo{Mode: 0o755, MTime: o.Date}})
	}
	info := &nfpm.Info{
		Name:        spec.Name,
		Arch:        o.Arch,
		Platform:    "linux",
		Version:     PackageVersion(o.Version, o.Commit, o.Date),
		Section:     "admin",
		Priority:    "optional",
		Maintainer:  "Cordon maintainers <security@cordon-edr.org>",
		Description: desc,
		Vendor:      "Cordon",
		Homepage:    "https://github.com/cordon-edr/cordon",
		License:     "Apache-2.0",
		MTime:       o.Date,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts:  scripts,
			RPM:      nfpm.RPM{BuildHost: "cordon-build", Group: "System Environment/Daemons"},
		},
	}
	if name == "collector" {
		info.Overridables.Depends = []string{"passwd | shadow-utils"}
		info.Overridables.RPM.Scripts = nfpm.RPMScripts{}
	}
	return info, nil
}

func write(info *nfpm.Info, format, out string) (string, error) {
	pkg, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	// Each format gets its own copy: preparing resolves the contents.
	i := *info
	i.Overridables.Contents = append(files.Contents(nil), info.Overridables.Contents...)
	i.Target = ""
	prepared := nfpm.WithDefaults(&i)
	if err := nfpm.PrepareForPackager(prepared, format); err != nil {
		return "", err
	}
	path := filepath.Join(out, pkg.ConventionalFileName(prepared))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := pkg.Package(prepared, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	return path, f.Close()
}
