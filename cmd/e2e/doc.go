// Package e2e holds Cordon's end-to-end tests: they build the real
// cordon-collector, cordon-agent and cordonctl binaries, run them on
// loopback with their badger stores in temporary folders, and check what
// a user would see through cordonctl --json. Tests that need the kernel's
// process events run as root and skip otherwise, saying why.
package e2e
