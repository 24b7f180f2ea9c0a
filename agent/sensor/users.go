package sensor

import (
	"os/user"
	"sync"
)

// maxUsers bounds the user name cache; it is cleared when full.
const maxUsers = 4096

// users maps uids to user names with a cache, since a lookup may read
// /etc/passwd or ask a directory service.
type users struct {
	lookup func(uid string) (string, error)

	mu    sync.Mutex
	names map[string]string
}

func newUsers() *users {
	return &users{
		lookup: func(uid string) (string, error) {
			u, err := user.LookupId(uid)
			if err != nil {
				return "", err
			}
			return u.Username, nil
		},
		names: make(map[string]string),
	}
}

// name returns the user name of uid, or uid itself when it has none.
// Failed lookups are cached too.
func (u *users) name(uid string) string {
	if uid == "" {
		return ""
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if n, ok := u.names[uid]; ok {
		return n
	}
	n, err := u.lookup(uid)
	if err != nil || n == "" {
		n = uid
	}
	if len(u.names) >= maxUsers {
		clear(u.names)
	}
	u.names[uid] = n
	return n
}
