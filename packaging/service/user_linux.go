package service

import (
	"fmt"
	"os/user"
)

// checkUser refuses to install a systemd unit whose account does not
// exist (the packages create it).
func checkUser(spec Spec, platform string) error {
	if spec.User == "" || platform != "linux-systemd" {
		return nil
	}
	if _, err := user.Lookup(spec.User); err != nil {
		return fmt.Errorf("%s runs as the user %s, which does not exist; create it first: useradd --system --user-group --home-dir /var/lib/cordon --no-create-home --shell /usr/sbin/nologin %s", spec.Name, spec.User, spec.User)
	}
	return nil
}
