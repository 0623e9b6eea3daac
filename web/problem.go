package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/validation"
)

// Problem is an RFC 9457 problem detail. Field and Reason name the bad input; Errors
// lists the bad rows of a file.
type Problem struct {
	Type   string             `json:"type"`
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail,omitempty"`
	Field  string             `json:"field,omitempty"`
	Reason string             `json:"reason,omitempty"`
	Errors []imports.RowError `json:"errors,omitempty"`
	// retryAfter, when set, is sent as the Retry-After header, in seconds.
	retryAfter int
	// cause is the error behind a 500, logged and never shown: its text may say
	// what the server holds inside.
	cause error
}

// Error implements error.
func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

func problem(status int, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

func fieldProblem(status int, fe *validation.Error) *Problem {
	p := problem(status, fe.Error())
	p.Field, p.Reason = fe.Field, fe.Reason
	return p
}

// errorHandler writes every error as application/problem+json. A 500's cause is
// logged under the request's ID, which the answer gives instead.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := toProblem(err)
	if p.cause != nil {
		id := requestID(c)
		s.Logger.Error("internal error", "error", p.cause, "method", c.Request().Method, "path", c.Request().URL.Path, "request_id", id)
		p = problem(http.StatusInternalServerError, "the server could not answer; its log says why under request ID "+id)
	}
	if p.retryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	_ = json.NewEncoder(c.Response()).Encode(p)
}

// retryAfterBusy is the Retry-After of a 503 or 504: a few seconds, in which an outage
// of Temporal or PostgreSQL may end or a call that was too slow may finish.
const retryAfterBusy = 5

// toProblem maps our errors, Echo's and Temporal's to a problem.
func toProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var fe *validation.Error
	if errors.As(err, &fe) {
		return fieldProblem(http.StatusUnprocessableEntity, fe)
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return problem(he.Code, fmt.Sprint(he.Message))
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		var d validation.Error
		// Only these types carry a validation.Error, so only they are decoded as one.
		hasField := func() bool { return appErr.HasDetails() && appErr.Details(&d) == nil && d.Field != "" }
		switch appErr.Type() {
		case validation.ApplicationErrorType, validation.NotFoundErrorType:
			if hasField() {
				return fieldProblem(http.StatusUnprocessableEntity, &d)
			}
			return problem(http.StatusUnprocessableEntity, appErr.Message())
		case validation.InvalidRowsErrorType:
			p := problem(http.StatusUnprocessableEntity, appErr.Message())
			if appErr.HasDetails() {
				_ = appErr.Details(&p.Errors)
			}
			return p
		case validation.AlreadyExistsErrorType, validation.ConflictErrorType:
			if hasField() {
				return fieldProblem(http.StatusConflict, &d)
			}
			return problem(http.StatusConflict, appErr.Message())
		}
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return problem(http.StatusNotFound, notFound.Error())
	}
	var (
		unavailable *serviceerror.Unavailable
		exhausted   *serviceerror.ResourceExhausted
		deadline    *serviceerror.DeadlineExceeded
	)
	switch {
	case errors.As(err, &unavailable):
		return busy(http.StatusServiceUnavailable, "Temporal is unavailable; retry later")
	case errors.As(err, &exhausted):
		return busy(http.StatusServiceUnavailable, "Temporal is overloaded; retry later")
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &deadline):
		return busy(http.StatusGatewayTimeout, "Temporal or PostgreSQL did not answer in time (PMO_HTTP_WAIT_TIMEOUT); "+
			"what the call started goes on, and the same call again answers for it")
	}
	return &Problem{Status: http.StatusInternalServerError, cause: err}
}

// busy is a 503 or 504 with a Retry-After.
func busy(status int, detail string) *Problem {
	p := problem(status, detail)
	p.retryAfter = retryAfterBusy
	return p
}

// maxBody bounds request bodies.
const maxBody = 1 << 20

// decode reads a JSON body strictly: unknown fields, trailing data and wrong types are
// refused with the field named.
func decode(c echo.Context, v any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct != "" && !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return problem(http.StatusUnsupportedMediaType, "send application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err)
	}
	if dec.More() {
		return problem(http.StatusBadRequest, "the body holds more than one JSON value")
	}
	return nil
}

func decodeProblem(err error) *Problem {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	var maxErr *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return problem(http.StatusBadRequest, "the body is empty; send a JSON object")
	case errors.As(err, &maxErr):
		return problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxBody))
	case errors.As(err, &typeErr):
		return fieldProblem(http.StatusBadRequest, &validation.Error{Field: typeErr.Field,
			Reason: fmt.Sprintf("must be a JSON %s, got %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)})
	case errors.As(err, &syntaxErr):
		return problem(http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, err))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldProblem(http.StatusBadRequest, &validation.Error{Field: name, Reason: "is not a known field"})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem(http.StatusBadRequest, "the body ends in the middle of a JSON value")
	}
	return problem(http.StatusBadRequest, "cannot read the body: "+err.Error())
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "float64", "uint", "uint64":
		return "number"
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	case "bool":
		return "boolean"
	}
	return goKind
}

// queryInt reads a whole-number query parameter from lo to hi, def when it is absent.
func queryInt(c echo.Context, name string, def, lo, hi int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, validation.Field(name, "%q: want a whole number from %d to %d", v, lo, hi)
	}
	return n, nil
}
