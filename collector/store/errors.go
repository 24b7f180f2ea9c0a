package store

import (
	"errors"
	"fmt"
)

// ErrNotFound is matched by every "no such object" error; the REST API
// answers it with 404.
var ErrNotFound = errors.New("not found")

// ErrConflict is matched by errors about a request that contradicts the
// current state of an object (an invalid status transition, a revoked
// agent); the REST API answers it with 409.
var ErrConflict = errors.New("conflict with the current state")

// FieldError is an error the caller can fix, naming the offending field.
// Kind is nil for bad input (400), ErrConflict (409) or ErrNotFound (404,
// e.g. an id in a request body that names nothing); the error matches
// its Kind.
type FieldError struct {
	Field string
	Msg   string
	Kind  error
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Is makes a FieldError match its Kind.
func (e *FieldError) Is(target error) bool {
	return e.Kind != nil && target == e.Kind
}

// Invalid returns a FieldError for bad input.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Conflict returns a FieldError for input that contradicts the current
// state.
func Conflict(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...), Kind: ErrConflict}
}

// Missing returns a FieldError for a field that names no object.
func Missing(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...), Kind: ErrNotFound}
}
