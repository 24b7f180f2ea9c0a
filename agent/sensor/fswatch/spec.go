package fswatch

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
)

// recursiveSuffix marks a watched path as recursive.
const recursiveSuffix = "/..."

// spec is one configured watched path.
type spec struct {
	// pattern is the cleaned path, possibly holding glob characters.
	pattern   string
	recursive bool
}

// parseSpec parses one configured path: absolute, optionally ending in
// "/..." for a recursive watch, optionally holding glob patterns.
func parseSpec(s string) (spec, error) {
	raw := s
	s = strings.TrimSpace(s)
	if s == "" {
		return spec{}, fmt.Errorf("watched path %q: empty", raw)
	}
	var sp spec
	if runtime.GOOS == "windows" {
		s = strings.ReplaceAll(s, `\`, "/")
	}
	if strings.HasSuffix(s, recursiveSuffix) || s == "..." {
		sp.recursive = true
		s = strings.TrimSuffix(s, "...")
		if s != "/" {
			s = strings.TrimSuffix(s, "/")
		}
	}
	if s == "" {
		return spec{}, fmt.Errorf("watched path %q: no folder before /...", raw)
	}
	if strings.Contains(s, "...") {
		return spec{}, fmt.Errorf("watched path %q: \"...\" may only end a path", raw)
	}
	s = filepath.FromSlash(s)
	if !filepath.IsAbs(s) {
		return spec{}, fmt.Errorf("watched path %q: not an absolute path", raw)
	}
	s = filepath.Clean(s)
	if _, err := filepath.Match(s, s); err != nil {
		return spec{}, fmt.Errorf("watched path %q: bad pattern: %w", raw, err)
	}
	sp.pattern = s
	return sp, nil
}

// ParsePaths checks configured watched paths, returning an error that
// names the first bad one.
func ParsePaths(paths []string) error {
	for _, p := range paths {
		if _, err := parseSpec(p); err != nil {
			return err
		}
	}
	return nil
}

// hasGlob reports whether a path holds glob characters.
func hasGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

// under reports whether path is root or below it.
func under(path, root string) bool {
	if path == root {
		return true
	}
	if root == string(filepath.Separator) {
		return strings.HasPrefix(path, root)
	}
	return strings.HasPrefix(path, root+string(filepath.Separator))
}

// matches reports whether a path is the path of sp itself (or matches its
// pattern).
func (sp spec) matches(path string) bool {
	if !hasGlob(sp.pattern) {
		return path == sp.pattern
	}
	ok, _ := filepath.Match(sp.pattern, path)
	return ok
}

// covers reports whether events at path fall under sp: path is the
// watched folder, one of its entries, or for a recursive spec anything
// below it.
func (sp spec) covers(path string) bool {
	for p := path; ; {
		if sp.matches(p) {
			return sp.recursive || p == path || filepath.Dir(path) == p
		}
		parent := filepath.Dir(p)
		if parent == p {
			return false
		}
		p = parent
	}
}

// DefaultPaths returns the paths watched when none are configured: the
// places attackers change on this operating system.
func DefaultPaths() []string {
	switch runtime.GOOS {
	case "windows":
		return []string{
			`C:\ProgramData\Microsoft\Windows\Start Menu\Programs\StartUp\...`,
			`C:\Users\*\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup\...`,
			`C:\Windows\System32\Tasks\...`,
			`C:\Windows\System32\drivers\etc\...`,
			`C:\Windows\Temp\...`,
		}
	case "darwin":
		return []string{
			"/etc/...",
			"/private/etc/...",
			"/Library/LaunchDaemons/...",
			"/Library/LaunchAgents/...",
			"/Users/*/Library/LaunchAgents/...",
			"/Users/*",
			"/Users/*/.ssh/...",
			"/var/root",
			"/var/root/.ssh/...",
			"/usr/local/bin",
			"/private/tmp/...",
		}
	default:
		return []string{
			// cron, sudoers, passwd, shadow, ld.so.preload, systemd
			// units, profile scripts, ssh configuration.
			"/etc/...",
			// Shell rc files, and .ssh as it appears.
			"/root",
			"/root/.ssh/...",
			"/home/*",
			"/home/*/.ssh/...",
			"/usr/local/bin",
			"/usr/local/sbin",
			"/usr/lib/systemd/...",
			"/var/spool/cron/...",
			"/tmp/...",
			"/dev/shm/...",
		}
	}
}
