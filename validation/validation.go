// Package validation describes bad input the same way everywhere: the field that is
// wrong and why. The web server turns it into problem+json; workflows return it from
// update validators so that bad input never enters history.
package validation

import "fmt"

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
