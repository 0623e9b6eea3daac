package validation

import (
	"strings"
	"testing"
	"time"
)

func TestBounds(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"time in 2026", Time("at", time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)), true},
		{"time at the first instant", Time("at", EarliestTime), true},
		{"time in 1999", Time("at", time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)), false},
		{"time at the end", Time("at", LatestTime), false},
		{"time zero", Time("at", time.Time{}), false},
		{"id", ID("id", "vm-1.a_b"), true},
		{"id empty", ID("id", ""), false},
		{"id dots", ID("id", ".."), false},
		{"id slash", ID("id", "a/b"), false},
		{"id too long", ID("id", strings.Repeat("a", MaxIDLength+1)), false},
		{"name empty", Name("site", ""), true},
		{"name with spaces and accents", Name("site", "Zürich east"), true},
		{"name with a line break", Name("site", "a\nb"), false},
		{"name with an escape", Name("site", "\x1b[31m"), false},
		{"name not UTF-8", Name("site", "\xff"), false},
		{"name too long", Name("site", strings.Repeat("a", MaxNameLength+1)), false},
		{"note with lines", Note("why", "one\r\ntwo\tthree"), true},
		{"note with a NUL", Note("why", "a\x00"), false},
		{"note too long", Note("why", strings.Repeat("a", MaxNoteLength+1)), false},
	} {
		if (c.err == nil) != c.ok {
			t.Errorf("%s: error %v, want ok %v", c.name, c.err, c.ok)
		}
		if e, isField := c.err.(*Error); c.err != nil && (!isField || e.Field == "" || e.Reason == "") {
			t.Errorf("%s: %v does not name the field and reason", c.name, c.err)
		}
	}
}
