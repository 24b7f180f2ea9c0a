// Package auth holds the REST API's keys. A key has a name and one role
// (viewer < responder < admin); only its SHA-256 is stored, so a key is
// shown once, when it is created. The first run of the collector creates
// an admin key and writes it to DATA/admin.token (EnsureAdmin).
package auth
