// Package packaging holds what Cordon's Linux packages are made of: the
// default configurations (etc/), the maintainer scripts (scripts/), the
// OS services (service/) and the package builder (cmd/mkpkg). See
// docs/deployment.md.
package packaging
