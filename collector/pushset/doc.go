// Package pushset is the store under every kind of set pushed to the
// fleet (rule sets, indicator sets): each valid push is kept as a new
// version, numbered SEQ-DIGEST, and becomes the current one, which the
// gateway delivers to every agent whose reported version differs. The
// same content pushed again is the current version, unchanged. The kind
// of set brings its own record, digest and wire form.
//
// Keys: <prefix>/<seq> holds each version, meta/<prefix>-current the
// sequence number of the current one.
package pushset
