// Package validation describes bad input the same way everywhere: the field that is
// wrong and why. The web server turns it into problem+json; workflows return it from
// update validators so that bad input never enters history.
package validation

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Error says which field is wrong and why.
type Error struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Error implements error.
func (e *Error) Error() string { return e.Field + ": " + e.Reason }

// Field returns an *Error for field with a formatted reason.
func Field(field, format string, args ...any) error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ApplicationErrorType is the Temporal application error type that carries an *Error
// as its details across an update or activity boundary.
const ApplicationErrorType = "InvalidField"

// InvalidRowsErrorType is the Temporal application error type of a file (an import,
// a calendar) that cannot be taken: its details are the file's bad rows, an
// imports.Errors, when it has any.
const InvalidRowsErrorType = "InvalidRows"

// NotFoundErrorType is the Temporal application error type for a reference to
// something that does not exist, such as an unknown VM; its details are an *Error.
const NotFoundErrorType = "NotFound"

// AlreadyExistsErrorType is the Temporal application error type for an ID that is
// already taken, such as a migration submitted twice; its details are an *Error.
const AlreadyExistsErrorType = "AlreadyExists"

// ConflictErrorType is the Temporal application error type for a request that the
// state of what it names forbids, such as registering a connector PMO started itself;
// its details are an *Error.
const ConflictErrorType = "Conflict"

// EarliestTime and LatestTime bound every time that input may hold: a year such as 0
// or 9999 is a typo, and one past 9999 cannot even be written back as JSON.
var (
	EarliestTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	LatestTime   = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Time checks that t is within [EarliestTime, LatestTime).
func Time(field string, t time.Time) error {
	if t.Before(EarliestTime) || !t.Before(LatestTime) {
		return Field(field, "must be between %s and %s, got %s", EarliestTime.Format(time.DateOnly),
			LatestTime.Format(time.DateOnly), t.Format(time.RFC3339))
	}
	return nil
}

// MaxIDLength bounds an ID.
const MaxIDLength = 64

// ID checks an ID that is used in workflow IDs, task queues and file names: 1 to
// MaxIDLength letters, digits, '-', '_' and '.', and not "." or "..".
func ID(field, id string) error {
	if id == "" {
		return Field(field, "is required")
	}
	if len(id) > MaxIDLength {
		return Field(field, "must be at most %d characters", MaxIDLength)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return Field(field, "may hold only letters, digits, '-', '_' and '.', got %q", id)
		}
	}
	if id == "." || id == ".." {
		return Field(field, "must not be %q", id)
	}
	return nil
}

// Lengths of free text, in bytes: a name (site, tier, connector, operator), and a
// note (why, a description).
const (
	MaxNameLength = 200
	MaxNoteLength = 2000
)

// Name checks a name that may be empty (a site, a tier, a connector, an operator):
// at most MaxNameLength bytes of UTF-8 text on one line, with no control character.
func Name(field, v string) error { return text(field, v, MaxNameLength, false) }

// Note checks free text that may be empty (why, a description): at most
// MaxNoteLength bytes of UTF-8 text with no control character but tabs and line
// breaks.
func Note(field, v string) error { return text(field, v, MaxNoteLength, true) }

// text checks that v is short, UTF-8 and without control characters, so that it logs
// and displays as it reads.
func text(field, v string, max int, lines bool) error {
	if len(v) > max {
		return Field(field, "must be at most %d bytes, got %d", max, len(v))
	}
	if !utf8.ValidString(v) {
		return Field(field, "must be UTF-8 text")
	}
	for _, r := range v {
		if unicode.IsControl(r) && !(lines && (r == '\t' || r == '\n' || r == '\r')) {
			return Field(field, "must not hold the control character %U", r)
		}
	}
	return nil
}
