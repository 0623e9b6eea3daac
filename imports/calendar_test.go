package imports

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/teambition/rrule-go"

	"github.com/pmo-dev/pmo/planning"
)

var (
	calSites = []string{"ams1", "fra1", "lon1"}
	calFrom  = utc("2026-10-01T00:00:00Z")
	calTo    = utc("2027-01-01T00:00:00Z")
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func readCalendarFile(t *testing.T, name string, opt CalendarOptions) ([]planning.KeyedEvent, error) {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return ReadCalendar(f, opt)
}

// occurrence is what a test expects of one event: its key's UID and original start,
// then the event.
type occurrence struct {
	uid, key, starts, ends, site, severity, detail string
}

func checkOccurrences(t *testing.T, got []planning.KeyedEvent, want []occurrence) {
	t.Helper()
	if len(got) != len(want) {
		for _, e := range got {
			t.Logf("got %s %s–%s %s", e.Key, e.Starts.Format(time.RFC3339), e.Ends.Format(time.RFC3339), e.Site)
		}
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		key := "ics/" + w.uid + "/" + w.key
		if g.Key != key || !g.Starts.Equal(utc(w.starts)) || !g.Ends.Equal(utc(w.ends)) || g.Site != w.site ||
			g.Severity != w.severity || g.Kind != "maintenance" || (w.detail != "" && g.Detail != w.detail) {
			t.Errorf("event %d:\n got %s %s %s %s %s %s %q\nwant %s %s %s %s %s maintenance %q", i,
				g.Key, g.Starts.Format(time.RFC3339), g.Ends.Format(time.RFC3339), g.Site, g.Severity, g.Kind, g.Detail,
				key, w.starts, w.ends, w.site, w.severity, w.detail)
		}
		if g.Starts.Location() != time.UTC || g.Ends.Location() != time.UTC {
			t.Errorf("event %d: times not in UTC: %v %v", i, g.Starts, g.Ends)
		}
	}
}

const (
	weekly  = "4k1q0v8d6m3r2s7t9u5w1x0y2z@google.com"
	monthly = "7c2e9a41b0d34f5f8e6a@google.com"
	allDay  = "0b9f4c2d1e8a7b6c5d4e@google.com"
	lasting = "d1e2f3a4b5c6d7e8f9a0@google.com"
)

// googleWant is testdata/maintenance.ics in [calFrom, calTo). Amsterdam is UTC+2 until
// 25 October 2026 03:00 and UTC+1 after, so the 02:00 local window moves from 00:00Z
// to 01:00Z.
var googleWant = []occurrence{
	{weekly, "2026-10-06T00:00:00Z", "2026-10-06T00:00:00Z", "2026-10-06T02:00:00Z", "ams1", "info",
		"AMS hypervisor patching: Weekly patch window for the Amsterdam hypervisors. Change: CHG0042317. Contact infra-oncall."},
	{weekly, "2026-10-13T00:00:00Z", "2026-10-13T00:00:00Z", "2026-10-13T02:00:00Z", "ams1", "info", ""},
	// 2nd Tuesday of the month, 22:00 local, PRIORITY:1; X-PMO-SITE wins over LOCATION.
	{monthly, "2026-10-13T20:00:00Z", "2026-10-13T20:00:00Z", "2026-10-13T21:00:00Z", "fra1", "critical", "Patch Tuesday: FRA storage firmware"},
	// DURATION; site and severity from CATEGORIES.
	{lasting, "2026-10-15T06:00:00Z", "2026-10-15T06:00:00Z", "2026-10-15T09:00:00Z", "lon1", "warning", "LON core switch upgrade"},
	{weekly, "2026-10-20T00:00:00Z", "2026-10-20T00:00:00Z", "2026-10-20T02:00:00Z", "ams1", "info", ""},
	// After the change to winter time.
	{weekly, "2026-10-27T01:00:00Z", "2026-10-27T01:00:00Z", "2026-10-27T03:00:00Z", "ams1", "info", ""},
	// 3 November moved to 4 November 22:00–23:30 local; keyed by the slot it replaces.
	{weekly, "2026-11-03T01:00:00Z", "2026-11-04T21:00:00Z", "2026-11-04T22:30:00Z", "ams1", "info",
		"AMS hypervisor patching (moved): Moved: the storage vendor is on site on Tuesday."},
	{monthly, "2026-11-10T21:00:00Z", "2026-11-10T21:00:00Z", "2026-11-10T22:00:00Z", "fra1", "critical", ""},
	// 10 November is an EXDATE, 17 November a cancelled instance. The all-day event is
	// two whole days in the calendar's zone (X-WR-TIMEZONE); LOCATION AMS1 is ams1.
	{allDay, "2026-11-19T23:00:00Z", "2026-11-19T23:00:00Z", "2026-11-21T23:00:00Z", "ams1", "info", "AMS1 power feed B replacement"},
	{weekly, "2026-11-24T01:00:00Z", "2026-11-24T01:00:00Z", "2026-11-24T03:00:00Z", "ams1", "info", ""},
	// UNTIL=20261201T010000Z includes this one; the cancelled FRA UPS test is absent.
	{weekly, "2026-12-01T01:00:00Z", "2026-12-01T01:00:00Z", "2026-12-01T03:00:00Z", "ams1", "info", ""},
	{monthly, "2026-12-08T21:00:00Z", "2026-12-08T21:00:00Z", "2026-12-08T22:00:00Z", "fra1", "critical", ""},
}

func TestReadCalendarGoogleExport(t *testing.T) {
	got, err := readCalendarFile(t, "maintenance.ics", CalendarOptions{From: calFrom, To: calTo, Sites: calSites})
	if err != nil {
		t.Fatal(err)
	}
	checkOccurrences(t, got, googleWant)
}

// The VTIMEZONE and Go's time zone database agree on Europe/Amsterdam: without the
// VTIMEZONE the same events come out.
func TestReadCalendarTimeZoneDatabase(t *testing.T) {
	data, err := os.ReadFile("testdata/maintenance.ics")
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`(?s)BEGIN:VTIMEZONE.*END:VTIMEZONE\r\n`).ReplaceAllString(string(data), "")
	if strings.Contains(text, "VTIMEZONE") {
		t.Fatal("VTIMEZONE not removed")
	}
	got, err := ReadCalendar(strings.NewReader(text), CalendarOptions{From: calFrom, To: calTo, Sites: calSites})
	if err != nil {
		t.Fatal(err)
	}
	checkOccurrences(t, got, googleWant)
}

// Outlook names its zones the Windows way, defined only by the file's VTIMEZONE, with
// rules from 1601. A daily 23:00–04:00 window across the change to winter time lasts
// the same exact 6 hours each night (RFC 5545), so it ends at 04:00 local the first
// night and 05:00 the others.
func TestReadCalendarOutlookExport(t *testing.T) {
	got, err := readCalendarFile(t, "outlook.ics", CalendarOptions{From: calFrom, To: calTo, Sites: calSites})
	if err != nil {
		t.Fatal(err)
	}
	const uid = "040000008200E00074C5B7101A82E00800000000D0A8C1B2C3D4DA01000000000000000010000000A1B2C3D4E5F60718293A4B5C6D7E8F90"
	checkOccurrences(t, got, []occurrence{
		{uid, "2026-10-24T21:00:00Z", "2026-10-24T21:00:00Z", "2026-10-25T03:00:00Z", "fra1", "warning", "FRA nightly backup freeze"},
		{uid, "2026-10-25T22:00:00Z", "2026-10-25T22:00:00Z", "2026-10-26T04:00:00Z", "fra1", "warning", ""},
		{uid, "2026-10-26T22:00:00Z", "2026-10-26T22:00:00Z", "2026-10-27T04:00:00Z", "fra1", "warning", ""},
	})
}

// Importing the same calendar twice, or with a later window, gives the same keys to
// the same occurrences.
func TestReadCalendarKeysAreStable(t *testing.T) {
	opt := CalendarOptions{From: calFrom, To: calTo, Sites: calSites}
	first, err := readCalendarFile(t, "maintenance.ics", opt)
	if err != nil {
		t.Fatal(err)
	}
	second, err := readCalendarFile(t, "maintenance.ics", opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(second) {
		t.Fatalf("%d events, then %d", len(first), len(second))
	}
	keys := map[string]planning.KeyedEvent{}
	for i := range first {
		if first[i] != second[i] {
			t.Errorf("event %d: %+v, then %+v", i, first[i], second[i])
		}
		if _, dup := keys[first[i].Key]; dup {
			t.Errorf("key %s twice", first[i].Key)
		}
		keys[first[i].Key] = first[i]
	}
	opt.From = utc("2026-11-01T00:00:00Z")
	later, err := readCalendarFile(t, "maintenance.ics", opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(later) != 6 {
		t.Errorf("%d events from 1 November, want 6", len(later))
	}
	for _, e := range later {
		if keys[e.Key] != e {
			t.Errorf("from 1 November %+v, from 1 October %+v", e, keys[e.Key])
		}
	}
}

// ics wraps VEVENT lines in a calendar.
func ics(lines ...string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//PMO//test//EN\r\n" + strings.Join(lines, "\r\n") + "\r\nEND:VCALENDAR\r\n"
}

// oneHourEach is an event a, b, c, … for each list of properties, an hour long from
// 01:00Z, 02:00Z, … on 2 November 2026.
func oneHourEach(props ...[]string) string {
	var lines []string
	for i, p := range props {
		lines = append(lines, "BEGIN:VEVENT", "UID:"+string(rune('a'+i)), fmt.Sprintf("DTSTART:20261102T%02d0000Z", i+1), "DURATION:PT1H")
		lines = append(append(lines, p...), "END:VEVENT")
	}
	return ics(lines...)
}

// oneHourWant is what oneHourEach's events are, given each one's site and severity.
func oneHourWant(siteSeverity ...[2]string) []occurrence {
	var want []occurrence
	for i, ss := range siteSeverity {
		start := fmt.Sprintf("2026-11-02T%02d:00:00Z", i+1)
		want = append(want, occurrence{string(rune('a' + i)), start, start, fmt.Sprintf("2026-11-02T%02d:00:00Z", i+2), ss[0], ss[1], ""})
	}
	return want
}

// noSites in a case's options stands for Sites nil; nil there means the test's sites.
var noSites = []string{}

func TestReadCalendarCases(t *testing.T) {
	for _, tc := range []struct {
		name string
		ics  string
		opt  CalendarOptions // From, To and Sites default to the test's
		want []occurrence
	}{
		{"a TZID with no VTIMEZONE is looked up in the time zone database",
			ics("BEGIN:VEVENT", "UID:ny", "DTSTART;TZID=America/New_York:20261101T010000",
				"DTEND;TZID=America/New_York:20261101T030000", "X-PMO-SITE:lon1", "END:VEVENT"),
			CalendarOptions{},
			// 01:00 EDT (UTC-4) to 03:00 EST (UTC-5): three hours, the day New York changes.
			[]occurrence{{"ny", "2026-11-01T05:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T08:00:00Z", "lon1", "info", "maintenance window"}}},
		{"floating times and dates are UTC when the calendar names no zone",
			ics("BEGIN:VEVENT", "UID:float", "DTSTART:20261102T010000", "DTEND:20261102T020000", "X-PMO-SITE:lon1", "END:VEVENT",
				"BEGIN:VEVENT", "UID:day", "DTSTART;VALUE=DATE:20261103", "X-PMO-SITE:lon1", "END:VEVENT"),
			CalendarOptions{},
			[]occurrence{
				{"float", "2026-11-02T01:00:00Z", "2026-11-02T01:00:00Z", "2026-11-02T02:00:00Z", "lon1", "info", ""},
				// A DATE with no end lasts one day.
				{"day", "2026-11-03T00:00:00Z", "2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z", "lon1", "info", ""},
			}},
		{"RDATE adds occurrences, EXDATE lists remove them, a repeated one counts once",
			ics("BEGIN:VEVENT", "UID:r", "DTSTART:20261102T010000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=4",
				"RDATE:20261110T050000Z,20261102T010000Z", "EXDATE:20261103T010000Z,20261104T010000Z", "X-PMO-SITE:ams1", "END:VEVENT"),
			CalendarOptions{},
			[]occurrence{
				{"r", "2026-11-02T01:00:00Z", "2026-11-02T01:00:00Z", "2026-11-02T02:00:00Z", "ams1", "info", ""},
				{"r", "2026-11-05T01:00:00Z", "2026-11-05T01:00:00Z", "2026-11-05T02:00:00Z", "ams1", "info", ""},
				{"r", "2026-11-10T05:00:00Z", "2026-11-10T05:00:00Z", "2026-11-10T06:00:00Z", "ams1", "info", ""},
			}},
		{"an unbounded rule is cut by the window, an occurrence overlapping its start is kept",
			ics("BEGIN:VEVENT", "UID:u", "DTSTART:20200101T220000Z", "DTEND:20200102T020000Z", "RRULE:FREQ=DAILY", "X-PMO-SITE:ams1", "END:VEVENT"),
			CalendarOptions{From: utc("2026-11-02T00:00:00Z"), To: utc("2026-11-03T00:00:00Z")},
			[]occurrence{
				{"u", "2026-11-01T22:00:00Z", "2026-11-01T22:00:00Z", "2026-11-02T02:00:00Z", "ams1", "info", ""},
				{"u", "2026-11-02T22:00:00Z", "2026-11-02T22:00:00Z", "2026-11-03T02:00:00Z", "ams1", "info", ""},
			}},
		{"the site: X-PMO-SITE, then LOCATION, then CATEGORIES, then the default",
			oneHourEach([]string{"X-PMO-SITE:FRA1", "LOCATION:ams1"}, []string{"LOCATION:ams1", "CATEGORIES:lon1"},
				[]string{"LOCATION:Hall 2", "CATEGORIES:Storage,lon1"}, []string{"LOCATION:Hall 2"}),
			CalendarOptions{Site: "fra1"},
			oneHourWant([2]string{"fra1", "info"}, [2]string{"ams1", "info"}, [2]string{"lon1", "info"}, [2]string{"fra1", "info"})},
		{"with no known sites, LOCATION is not a site and X-PMO-SITE is taken as it is",
			oneHourEach([]string{"X-PMO-SITE:par1"}, []string{"LOCATION:ams1"}),
			CalendarOptions{Site: "fra1", Sites: noSites},
			oneHourWant([2]string{"par1", "info"}, [2]string{"fra1", "info"})},
		{"the severity: X-PMO-SEVERITY, then PRIORITY, then CATEGORIES",
			oneHourEach([]string{"X-PMO-SEVERITY:Critical", "PRIORITY:9"}, []string{"PRIORITY:9", "CATEGORIES:critical"},
				[]string{"PRIORITY:0", "CATEGORIES:warning,Critical"}, []string{"PRIORITY:5"}),
			CalendarOptions{Site: "fra1"},
			oneHourWant([2]string{"fra1", "critical"}, [2]string{"fra1", "info"}, [2]string{"fra1", "critical"}, [2]string{"fra1", "warning"})},
		{"a moved instance with no end keeps the series' length; one moved into the window counts, one moved out does not",
			ics("BEGIN:VEVENT", "UID:m", "DTSTART:20261102T010000Z", "DTEND:20261102T013000Z", "RRULE:FREQ=DAILY;COUNT=3", "X-PMO-SITE:ams1", "END:VEVENT",
				"BEGIN:VEVENT", "UID:m", "RECURRENCE-ID:20261103T010000Z", "DTSTART:20261203T010000Z", "X-PMO-SITE:ams1", "END:VEVENT",
				"BEGIN:VEVENT", "UID:m", "RECURRENCE-ID:20261104T010000Z", "DTSTART:20261101T230000Z", "X-PMO-SITE:ams1", "END:VEVENT"),
			CalendarOptions{From: utc("2026-11-01T00:00:00Z"), To: utc("2026-12-01T00:00:00Z")},
			[]occurrence{
				{"m", "2026-11-04T01:00:00Z", "2026-11-01T23:00:00Z", "2026-11-01T23:30:00Z", "ams1", "info", ""},
				{"m", "2026-11-02T01:00:00Z", "2026-11-02T01:00:00Z", "2026-11-02T01:30:00Z", "ams1", "info", ""},
			}},
		{"a moved instance whose series is not in the file stands alone; a cancelled series has none",
			ics("BEGIN:VEVENT", "UID:orphan", "RECURRENCE-ID:20261103T010000Z", "DTSTART:20261103T020000Z", "DURATION:PT2H", "X-PMO-SITE:lon1", "END:VEVENT",
				"BEGIN:VEVENT", "UID:gone", "STATUS:CANCELLED", "DTSTART:20261102T010000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY", "X-PMO-SITE:lon1", "END:VEVENT",
				"BEGIN:VEVENT", "UID:gone", "RECURRENCE-ID:20261103T010000Z", "DTSTART:20261103T050000Z", "DURATION:PT1H", "X-PMO-SITE:lon1", "END:VEVENT"),
			CalendarOptions{},
			[]occurrence{{"orphan", "2026-11-03T01:00:00Z", "2026-11-03T02:00:00Z", "2026-11-03T04:00:00Z", "lon1", "info", ""}}},
		{"a byte order mark, and two calendars in one stream with their own zones",
			"\ufeff" + ics("X-WR-TIMEZONE:Europe/Amsterdam", "BEGIN:VEVENT", "UID:x", "DTSTART:20261102T010000", "DURATION:PT1H", "X-PMO-SITE:ams1", "END:VEVENT") +
				ics("BEGIN:VEVENT", "UID:y", "DTSTART:20261102T010000", "DURATION:PT1H", "X-PMO-SITE:lon1", "END:VEVENT"),
			CalendarOptions{},
			[]occurrence{
				{"x", "2026-11-02T00:00:00Z", "2026-11-02T00:00:00Z", "2026-11-02T01:00:00Z", "ams1", "info", ""},
				{"y", "2026-11-02T01:00:00Z", "2026-11-02T01:00:00Z", "2026-11-02T02:00:00Z", "lon1", "info", ""},
			}},
		{"an empty calendar has no events",
			ics("BEGIN:VTODO", "UID:todo", "END:VTODO"), CalendarOptions{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := tc.opt
			if opt.From.IsZero() {
				opt.From, opt.To = calFrom, calTo
			}
			switch {
			case opt.Sites == nil:
				opt.Sites = calSites
			case len(opt.Sites) == 0:
				opt.Sites = nil
			}
			got, err := ReadCalendar(strings.NewReader(tc.ics), opt)
			if err != nil {
				t.Fatal(err)
			}
			checkOccurrences(t, got, tc.want)
		})
	}
}

// Every bad VEVENT is listed, by the line its BEGIN:VEVENT is on, and the good ones
// are not imported.
func TestReadCalendarMalformed(t *testing.T) {
	got, err := readCalendarFile(t, "malformed.ics", CalendarOptions{From: calFrom, To: calTo, Sites: calSites})
	var bad Errors
	if !errors.As(err, &bad) {
		t.Fatalf("got %v, want Errors", err)
	}
	if got != nil {
		t.Errorf("got %d events with errors", len(got))
	}
	want := Errors{
		{11, "UID", "missing; every event needs a UID"},
		{17, "DTSTART", `"2026-11-04 01:00" is not a date-time like 20261114T020000`},
		{23, "DTEND", "missing; a maintenance window needs a length (DTEND or DURATION)"},
		{28, "X-PMO-SITE", `"par9" is not a known site (known: ams1, fra1, lon1)`},
		{34, "PRIORITY", `"high" is not a priority; want 0 to 9`},
		{41, "DTSTART", `unknown time zone "Mars/Olympus_Mons": no VTIMEZONE for it in the file and not in the time zone database`},
		{47, "RRULE", `"FREQ=FORTNIGHTLY" is not a recurrence rule: undefined frequency: FORTNIGHTLY`},
		{54, "RRULE", "a maintenance window repeats daily at most; for several a day use FREQ=DAILY with BYHOUR"},
		{61, "DTEND", "the event ends at or before its start; a maintenance window needs a length"},
		{67, "DURATION", "an event has DTEND or DURATION, not both"},
		{74, "X-PMO-SITE", "the event names no site: give X-PMO-SITE, or a LOCATION or CATEGORIES entry that is a site (ams1, fra1, lon1), or a default site"},
		{80, "UID", `"good-1" is also the UID of the event on line 4`},
	}
	if len(bad) != len(want) {
		t.Fatalf("got %d errors, want %d: %v", len(bad), len(want), bad)
	}
	for i := range want {
		if bad[i] != want[i] {
			t.Errorf("error %d:\n got %+v\nwant %+v", i, bad[i], want[i])
		}
	}
}

func TestReadCalendarLimits(t *testing.T) {
	hourly := ics("BEGIN:VEVENT", "UID:h", "DTSTART:20260101T000000Z", "DURATION:PT30M",
		"RRULE:FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23", "X-PMO-SITE:ams1", "END:VEVENT")
	for _, tc := range []struct {
		name     string
		ics      string
		from, to time.Time
		want     RowError
	}{
		{"too many occurrences in the window", hourly, calFrom, utc("2028-01-01T00:00:00Z"),
			RowError{4, "RRULE", "the calendar has more than 10000 occurrences in the window; import a shorter window"}},
		{"too many steps before the window",
			strings.Replace(hourly, "20260101", "19000101", 1), utc("2026-10-01T00:00:00Z"), utc("2026-10-02T00:00:00Z"),
			RowError{4, "RRULE", "the calendar's rules repeat more than 1000000 times before the window ends; start the series later"}},
		{"a series older than the rule library can step",
			strings.Replace(hourly, "20260101T000000Z", "17000101T000000Z", 1), calFrom, calTo,
			RowError{4, "RRULE", "the series starts more than 250 years before the window, more than the rule library can step through"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCalendar(strings.NewReader(tc.ics), CalendarOptions{From: tc.from, To: tc.to, Sites: calSites})
			var bad Errors
			if !errors.As(err, &bad) || len(bad) != 1 || bad[0] != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// A file that is not iCalendar at all, or a wrong window, is a plain error, not a
// list of bad events.
func TestReadCalendarNotACalendar(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		opt        CalendarOptions
		want       string
	}{
		{"empty", "", CalendarOptions{From: calFrom, To: calTo}, "calendar: not an iCalendar file: the file is empty"},
		{"CSV", "site,starts,ends\nams1,2026-11-02T01:00:00Z,2026-11-02T03:00:00Z\n", CalendarOptions{From: calFrom, To: calTo},
			"calendar: not an iCalendar file: ical: malformed content line: missing colon"},
		{"a vCard", "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ops\r\nEND:VCARD\r\n", CalendarOptions{From: calFrom, To: calTo},
			`calendar: not an iCalendar file: ical: invalid toplevel component name: expected "VCALENDAR", got "VCARD"`},
		{"cut short", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n", CalendarOptions{From: calFrom, To: calTo},
			"calendar: not an iCalendar file: the file ends before END:VCALENDAR"},
		{"a parameter with no value", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;TZID=x", CalendarOptions{From: calFrom, To: calTo},
			"calendar: not an iCalendar file: malformed content line: runtime error: index out of range [0] with length 0"},
		{"no window", ics(), CalendarOptions{},
			"calendar: the window's end 0001-01-01T00:00:00Z is not after its start 0001-01-01T00:00:00Z"},
		{"an unknown default site", ics(), CalendarOptions{From: calFrom, To: calTo, Site: "par1", Sites: calSites},
			`calendar: default site "par1" is not a known site (known: ams1, fra1, lon1)`},
		{"an unknown calendar zone", "BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:Nowhere/Land\r\nEND:VCALENDAR\r\n", CalendarOptions{From: calFrom, To: calTo},
			`calendar: X-WR-TIMEZONE: unknown time zone "Nowhere/Land": no VTIMEZONE for it in the file and not in the time zone database`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCalendar(strings.NewReader(tc.text), tc.opt)
			var bad Errors
			if err == nil || errors.As(err, &bad) || err.Error() != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
}

func FuzzReadCalendar(f *testing.F) {
	f.Add(ics("BEGIN:VEVENT", "UID:a", "DTSTART;TZID=Europe/Amsterdam:20261025T020000", "DURATION:PT1H",
		"RRULE:FREQ=WEEKLY;BYDAY=SU,2TU", "EXDATE:20261101T010000Z", "X-PMO-SITE:ams1", "END:VEVENT"))
	f.Add(ics("BEGIN:VTIMEZONE", "TZID:Z", "BEGIN:STANDARD", "DTSTART:16010101T030000", "TZOFFSETFROM:+0200",
		"TZOFFSETTO:+0100", "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10", "END:STANDARD", "END:VTIMEZONE",
		"BEGIN:VEVENT", "UID:b", "DTSTART;TZID=Z:20261024T230000", "DTEND;TZID=Z:20261025T040000", "LOCATION:fra1", "END:VEVENT",
		"BEGIN:VEVENT", "UID:b", "RECURRENCE-ID;VALUE=DATE:20261024", "DTSTART;VALUE=DATE:20261026", "STATUS:CANCELLED", "END:VEVENT"))
	f.Add("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;TZID=\"x:20261024T230000\r\n")
	f.Fuzz(func(t *testing.T, text string) {
		got, err := ReadCalendar(strings.NewReader(text), CalendarOptions{From: calFrom, To: calTo, Sites: calSites, Site: "lon1"})
		if err != nil {
			return
		}
		for _, e := range got {
			if e.Kind != "maintenance" || !e.Ends.After(e.Starts) || !e.Starts.Before(calTo) || !e.Ends.After(calFrom) ||
				!strings.HasPrefix(e.Key, "ics/") || (e.Site != "ams1" && e.Site != "fra1" && e.Site != "lon1") {
				t.Fatalf("bad event %+v", e)
			}
		}
	})
}

// never agrees with stepping through the rule itself, which rrule-go does for 292
// years: long enough for every rule here that gives a date.
func TestNever(t *testing.T) {
	for _, tc := range []struct {
		rule, dtstart string
		never         bool
	}{
		{"FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "2026-11-02T01:00:00Z", true},
		{"FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31;BYHOUR=1,2", "2026-11-02T01:00:00Z", true},
		{"FREQ=DAILY", "2026-11-02T01:00:00Z", false},
		{"FREQ=DAILY;INTERVAL=7;BYDAY=TU", "2026-11-02T01:00:00Z", true}, // every 7th day from a Monday is a Monday
		{"FREQ=DAILY;INTERVAL=7;BYDAY=MO", "2026-11-02T01:00:00Z", false},
		{"FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", "2026-11-02T01:00:00Z", false}, // every 28 years or so
		{"FREQ=DAILY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", "2026-11-02T01:00:00Z", false},
		{"FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30", "2026-11-02T01:00:00Z", true},
		{"FREQ=WEEKLY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29", "2026-11-02T01:00:00Z", false},
		{"FREQ=WEEKLY;INTERVAL=3;BYDAY=TU,WE", "2026-11-02T01:00:00Z", false},
		{"FREQ=MONTHLY;BYMONTH=4,6;BYMONTHDAY=31", "2026-11-02T01:00:00Z", true},
		{"FREQ=MONTHLY;INTERVAL=2;BYMONTH=2,4", "2026-11-02T01:00:00Z", true}, // odd months only
		{"FREQ=MONTHLY;INTERVAL=2;BYMONTH=1,4", "2026-11-02T01:00:00Z", false},
		{"FREQ=MONTHLY;BYMONTH=2", "2026-01-30T01:00:00Z", true}, // on the 30th, DTSTART's day
		{"FREQ=MONTHLY;BYDAY=2TU", "2026-09-08T20:00:00Z", false},
		{"FREQ=MONTHLY;BYDAY=5FR;BYMONTH=2", "2026-11-02T01:00:00Z", false}, // a fifth Friday in February, 2036
		{"FREQ=YEARLY;BYMONTH=2", "2026-01-30T01:00:00Z", true},
		{"FREQ=YEARLY;BYMONTH=2", "2026-01-29T01:00:00Z", false},
		{"FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", "2027-01-01T00:00:00Z", true}, // 2027, 2031, ...: no leap year
		{"FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", "2028-01-01T00:00:00Z", false},
		{"FREQ=YEARLY;BYWEEKNO=53;BYDAY=TH", "2026-11-02T01:00:00Z", false},
	} {
		opt, err := rrule.StrToROption(tc.rule)
		if err != nil {
			t.Fatal(err)
		}
		opt.Dtstart = utc(tc.dtstart)
		r, err := rrule.NewRRule(*opt)
		if err != nil {
			t.Fatal(err)
		}
		_, gives := r.Iterator()()
		if gives == tc.never {
			t.Fatalf("%s from %s: rrule-go gives a date: %v; the test is wrong", tc.rule, tc.dtstart, gives)
		}
		start := time.Now()
		if got := never(*opt); got != tc.never {
			t.Errorf("%s from %s: never %v, want %v", tc.rule, tc.dtstart, got, tc.never)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: %v", tc.rule, d)
		}
	}
}

// A daily rule that never matches gives no occurrences but the event's own start, at
// once rather than after stepping to the year 9999.
func TestReadCalendarDeadRule(t *testing.T) {
	got, err := ReadCalendar(strings.NewReader(ics("BEGIN:VEVENT", "UID:d", "DTSTART:20261102T010000Z", "DURATION:PT1H",
		"RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "X-PMO-SITE:ams1", "END:VEVENT")), CalendarOptions{From: calFrom, To: calTo, Sites: calSites})
	if err != nil {
		t.Fatal(err)
	}
	checkOccurrences(t, got, []occurrence{{"d", "2026-11-02T01:00:00Z", "2026-11-02T01:00:00Z", "2026-11-02T02:00:00Z", "ams1", "info", ""}})
}

func TestReadCalendarTooManySeries(t *testing.T) {
	var lines []string
	for i := range maxSeries + 1 {
		lines = append(lines, "BEGIN:VEVENT", fmt.Sprintf("UID:s%d", i), "DTSTART:20261102T010000Z", "DURATION:PT1H",
			"RRULE:FREQ=YEARLY", "X-PMO-SITE:ams1", "END:VEVENT")
	}
	_, err := ReadCalendar(strings.NewReader(ics(lines...)), CalendarOptions{From: calFrom, To: calTo, Sites: calSites})
	var bad Errors
	want := RowError{4 + 7*maxSeries, "RRULE", "the calendar has more than 1000 recurring events"}
	if !errors.As(err, &bad) || len(bad) != 1 || bad[0] != want {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func TestReadCalendarVTimezoneRuleNotYearly(t *testing.T) {
	_, err := ReadCalendar(strings.NewReader(ics("BEGIN:VTIMEZONE", "TZID:Odd", "BEGIN:STANDARD", "DTSTART:19700101T000000",
		"TZOFFSETFROM:+0100", "TZOFFSETTO:+0100", "RRULE:FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30", "END:STANDARD", "END:VTIMEZONE",
		"BEGIN:VEVENT", "UID:o", "DTSTART;TZID=Odd:20261102T010000", "DURATION:PT1H", "X-PMO-SITE:ams1", "END:VEVENT")),
		CalendarOptions{From: calFrom, To: calTo, Sites: calSites})
	var bad Errors
	want := RowError{13, "DTSTART", `time zone "Odd": its VTIMEZONE: STANDARD: RRULE "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30": want a yearly rule`}
	if !errors.As(err, &bad) || len(bad) != 1 || bad[0] != want {
		t.Fatalf("got %v, want %v", err, want)
	}
}
