// Package core holds the small vocabulary every revops package shares: the one
// error type with its codes, and list parameters. It imports only the standard
// library so that every other package may depend on it.
package core

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Code names a class of failure. The HTTP kernel maps each code to a status in
// one table; domain code never thinks in status codes.
type Code string

// The codes of spec 001 plus the protocol-level ones revops adds.
const (
	CodeValidation       Code = "validation_failed"
	CodeNotFound         Code = "not_found"
	CodeUnauthorized     Code = "unauthorized"
	CodeAccessDenied     Code = "access_denied"
	CodeFeatureLimit     Code = "feature_limit_reached"
	CodeRateLimited      Code = "rate_limit_exceeded"
	CodeInternal         Code = "server_error"
	CodeBadRequest       Code = "bad_request"
	CodeConflict         Code = "conflict"
	CodeTooLarge         Code = "payload_too_large"
	CodeMethodNotAllowed Code = "method_not_allowed"
	CodeUnsupportedMedia Code = "unsupported_media_type"
	// CodeUnavailable: a dependency (the database under overload, the
	// payment provider) cannot serve now; retrying later may succeed.
	CodeUnavailable Code = "service_unavailable"
	// CodeTOTPRequired: a login of a user with two-factor authentication
	// gave no code (401).
	CodeTOTPRequired Code = "totp_required"
	// CodeTOTPEnrollmentRequired: the workspace requires two-factor
	// authentication and the user has not enabled it (403).
	CodeTOTPEnrollmentRequired Code = "totp_enrollment_required"
)

// Error is the only error type revops returns across package boundaries.
// Message is safe to show to a client; Cause is not and only reaches the log.
type Error struct {
	Code    Code
	Message string
	// Fields holds per-field validation messages keyed by JSON field name
	// (dotted for nested fields, e.g. "settings.timezone").
	Fields map[string][]string
	// Extra holds additional top-level members of the error body (e.g.
	// "feature" and "upgrade_url" for feature_limit_reached).
	Extra map[string]any
	Cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if len(e.Fields) > 0 {
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " [%s: %s]", k, strings.Join(e.Fields[k], "; "))
		}
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Cause }

// Is reports a match by code, so errors.Is(err, core.ErrNotFound) holds for
// every not-found error whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is. Return fresh errors (E, NotFound, …) rather than
// these, so that callers cannot mutate shared values.
var (
	ErrNotFound     = &Error{Code: CodeNotFound, Message: "Resource not found."}
	ErrConflict     = &Error{Code: CodeConflict, Message: "The request conflicts with the current state of the resource."}
	ErrValidation   = &Error{Code: CodeValidation, Message: "The given data was invalid."}
	ErrUnauthorized = &Error{Code: CodeUnauthorized, Message: "Invalid or missing API key."}
	ErrAccessDenied = &Error{Code: CodeAccessDenied, Message: "Insufficient permissions."}
	ErrBadRequest   = &Error{Code: CodeBadRequest, Message: "The request is malformed."}
)

// E builds an error with a code and a client-safe message.
func E(code Code, format string, args ...any) *Error {
	if len(args) > 0 {
		format = fmt.Sprintf(format, args...)
	}
	return &Error{Code: code, Message: format}
}

// NotFound is the not-found error every store returns.
func NotFound() *Error { return &Error{Code: CodeNotFound, Message: ErrNotFound.Message} }

// Conflict reports a state conflict (duplicate slug, last owner, …).
func Conflict(format string, args ...any) *Error { return E(CodeConflict, format, args...) }

// Unauthorized is the one answer to a missing, invalid, expired or revoked
// credential: it never says which.
func Unauthorized() *Error {
	return &Error{Code: CodeUnauthorized, Message: ErrUnauthorized.Message}
}

// MissingScope is access_denied naming the scope that was required.
func MissingScope(scope string) *Error {
	return E(CodeAccessDenied, "Insufficient permissions. Required scope: %s", scope)
}

// Invalid reports one invalid field with a message in spec 001's style.
func Invalid(field, message string) *Error {
	return &Error{Code: CodeValidation, Message: ErrValidation.Message, Fields: map[string][]string{field: {message}}}
}

// Internal wraps an unexpected failure; the cause is logged, never sent.
func Internal(cause error) *Error {
	return &Error{Code: CodeInternal, Message: "An unexpected error occurred.", Cause: cause}
}

// As returns err as *Error, wrapping anything else as an internal error.
func As(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err)
}

// Validation collects field errors; Err returns nil when none were added.
type Validation struct{ fields map[string][]string }

// Add records message for field.
func (v *Validation) Add(field, message string) {
	if v.fields == nil {
		v.fields = map[string][]string{}
	}
	v.fields[field] = append(v.fields[field], message)
}

// Err returns the collected validation error, or nil.
func (v *Validation) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &Error{Code: CodeValidation, Message: ErrValidation.Message, Fields: v.fields}
}
