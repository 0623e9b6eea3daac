package imports

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the runtime image (debian slim) has no zoneinfo; TZIDs must still resolve
	"unicode/utf8"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"

	"github.com/pmo-dev/pmo/planning"
)

// The bounds of a calendar import. A maintenance window that repeats every minute, or a
// rule that must step a million times to reach the window, is a mistake or an attack,
// not a maintenance plan.
const (
	maxOccurrences = 10000                // occurrences in [From, To) in the whole calendar
	maxSteps       = 1000000              // rule steps in the whole calendar, before and in the window
	maxLength      = 366 * 24 * time.Hour // one occurrence
	maxDetail      = 300                  // runes of an event's Detail
	maxSeries      = 1000                 // recurring events in a calendar
)

// CalendarOptions say which occurrences of a calendar to read and which sites they
// may name.
type CalendarOptions struct {
	// Site is the site of events that name none (no X-PMO-SITE, no LOCATION or
	// CATEGORIES that is a known site). Empty: such events are errors.
	Site string
	// From and To bound the import: only occurrences that overlap [From, To) are
	// returned, one-off events as well as recurrences. To must be after From.
	From, To time.Time
	// Sites are the known site IDs. If non-nil, an event naming another site is an
	// error, and LOCATION and CATEGORIES are matched against them; if nil, only
	// X-PMO-SITE and Site give an event its site.
	Sites []string
}

// ReadCalendar parses an iCalendar (RFC 5545) stream and returns one maintenance event
// per occurrence that overlaps [opt.From, opt.To), sorted by start. Each event's Key is
// "ics/<UID>/<start of the occurrence in RFC 3339 UTC>" (for a moved instance, the
// start it was moved from: its RECURRENCE-ID), so importing the same calendar again
// yields the same keys. If any VEVENT is bad it returns no events and Errors listing
// each bad one (Line is the line of its BEGIN:VEVENT, Column the property); a stream
// that is not iCalendar is a plain error. docs/events.md describes the mapping.
func ReadCalendar(r io.Reader, opt CalendarOptions) ([]planning.KeyedEvent, error) {
	if !opt.To.After(opt.From) {
		return nil, fmt.Errorf("calendar: the window's end %s is not after its start %s", opt.To.Format(time.RFC3339), opt.From.Format(time.RFC3339))
	}
	if opt.Site != "" && opt.Sites != nil && knownSite(opt.Sites, opt.Site) == "" {
		return nil, fmt.Errorf("calendar: default site %q is not a known site (known: %s)", opt.Site, strings.Join(opt.Sites, ", "))
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("calendar: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // some exporters write a BOM
	cals, err := decodeCalendars(data)
	if err != nil {
		return nil, fmt.Errorf("calendar: not an iCalendar file: %w", err)
	}
	lines := veventLines(data)
	c := calendarReader{opt: opt}
	n := 0 // VEVENTs seen, in file order, to find their lines
	for _, cal := range cals {
		c.zones, err = newZones(cal, opt.To)
		if err != nil {
			return nil, fmt.Errorf("calendar: %w", err)
		}
		var events []*vevent
		walk(cal.Component, func(comp *ical.Component, top bool) {
			line := 0
			if n < len(lines) {
				line = lines[n]
			}
			n++
			if top {
				events = append(events, &vevent{comp: comp, line: line})
			}
		})
		c.read(events)
	}
	if len(c.errs) > 0 {
		slices.SortStableFunc(c.errs, func(a, b RowError) int { return a.Line - b.Line })
		return nil, c.errs
	}
	slices.SortFunc(c.out, func(a, b planning.KeyedEvent) int {
		if d := a.Starts.Compare(b.Starts); d != 0 {
			return d
		}
		return strings.Compare(a.Key, b.Key)
	})
	return c.out, nil
}

// decodeCalendars decodes every VCALENDAR of a stream. The decoder panics on some
// malformed content lines; that is a malformed file, not a crash.
func decodeCalendars(data []byte) (cals []*ical.Calendar, err error) {
	defer func() {
		if p := recover(); p != nil {
			cals, err = nil, fmt.Errorf("malformed content line: %v", p)
		}
	}()
	dec := ical.NewDecoder(bytes.NewReader(data))
	for {
		cal, err := dec.Decode()
		if errors.Is(err, io.EOF) {
			switch {
			case len(cals) > 0:
				return cals, nil
			case len(bytes.TrimSpace(data)) == 0:
				return nil, errors.New("the file is empty")
			}
			return nil, errors.New("the file ends before END:VCALENDAR")
		}
		if err != nil {
			return nil, err
		}
		cals = append(cals, cal)
	}
}

// veventLines returns the line of each BEGIN:VEVENT, in file order. A folded line's
// continuation starts with a blank, so it never looks like one.
func veventLines(data []byte) []int {
	var lines []int
	for i, l := range bytes.Split(data, []byte("\n")) {
		if strings.EqualFold(strings.TrimSpace(string(l)), "BEGIN:VEVENT") {
			lines = append(lines, i+1)
		}
	}
	return lines
}

// walk calls f for every VEVENT under comp in file order; top says it is a child of
// the VCALENDAR, the only place a VEVENT means something.
func walk(comp *ical.Component, f func(comp *ical.Component, top bool)) {
	for _, child := range comp.Children {
		if child.Name == ical.CompEvent {
			f(child, comp.Name == ical.CompCalendar)
		}
		walk(child, f)
	}
}

// vevent is one VEVENT and the line it starts on.
type vevent struct {
	comp *ical.Component
	line int
}

// calendarReader collects the events and errors of a calendar.
type calendarReader struct {
	opt       CalendarOptions
	zones     *zones
	out       []planning.KeyedEvent
	keys      map[string]bool
	errs      Errors
	full      bool // maxOccurrences reached and reported
	recurring int  // recurring events so far
	steps     int  // rule steps so far
}

func (c *calendarReader) fail(ev *vevent, column, format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	if ev.line == 0 { // no line to point at: name the event instead
		if uid := propText(ev.comp, ical.PropUID); uid != "" {
			reason = fmt.Sprintf("event %q: %s", uid, reason)
		}
	}
	c.errs = append(c.errs, RowError{Line: ev.line, Column: column, Reason: reason})
}

// read turns a calendar's VEVENTs into events. A VEVENT with a RECURRENCE-ID overrides
// one occurrence of the series with its UID.
func (c *calendarReader) read(events []*vevent) {
	masters := map[string]*vevent{}
	overrides := map[string][]*vevent{}
	var order []string // UIDs in file order, so errors come in file order
	for _, ev := range events {
		uid := propText(ev.comp, ical.PropUID)
		if uid == "" {
			c.fail(ev, "UID", "missing; every event needs a UID")
			continue
		}
		if _, ok := masters[uid]; !ok && len(overrides[uid]) == 0 {
			order = append(order, uid)
		}
		if ev.comp.Props.Get(ical.PropRecurrenceID) != nil {
			overrides[uid] = append(overrides[uid], ev)
			continue
		}
		if first, ok := masters[uid]; ok {
			c.fail(ev, "UID", "%q is also the UID of the event on line %d", uid, first.line)
			continue
		}
		masters[uid] = ev
	}
	for _, uid := range order {
		c.series(uid, masters[uid], overrides[uid])
	}
}

// series reads one UID: the master event, if any, and its overridden instances.
func (c *calendarReader) series(uid string, master *vevent, overrides []*vevent) {
	if master != nil && cancelled(master.comp) {
		return // a cancelled series has no instances, moved or not
	}
	// The instances the overrides replace, by their original start.
	replaced := map[time.Time]bool{}
	var masterSpan *span
	if master != nil {
		sp, ok := c.span(master, nil)
		if ok {
			masterSpan = &sp
		}
	}
	for _, ov := range overrides {
		rid, ok := c.recurrenceID(ov)
		if !ok {
			continue
		}
		replaced[rid] = true
		if cancelled(ov.comp) {
			continue
		}
		sp, ok := c.span(ov, masterSpan)
		if !ok {
			continue
		}
		meta, ok := c.meta(ov)
		if !ok {
			continue
		}
		start := sp.zone.toUTC(sp.wall)
		c.emit(ov, uid, rid, start, sp.end(start), meta)
	}
	if master == nil || masterSpan == nil {
		return
	}
	meta, ok := c.meta(master)
	if !ok {
		return
	}
	starts, ok := c.occurrences(master, *masterSpan)
	if !ok {
		return
	}
	for _, start := range starts {
		if !replaced[start] {
			c.emit(master, uid, start, start, masterSpan.end(start), meta)
		}
	}
}

// emit adds one occurrence if it overlaps the window. key is the occurrence's original
// start.
func (c *calendarReader) emit(ev *vevent, uid string, key, start, end time.Time, m eventMeta) {
	if !start.Before(c.opt.To) || !end.After(c.opt.From) {
		return
	}
	k := "ics/" + uid + "/" + key.UTC().Format(time.RFC3339)
	if c.keys[k] {
		return // an RDATE that the RRULE also gives
	}
	if len(c.out) >= maxOccurrences {
		if !c.full {
			c.fail(ev, "RRULE", "the calendar has more than %d occurrences in the window; import a shorter window", maxOccurrences)
			c.full = true
		}
		return
	}
	if c.keys == nil {
		c.keys = map[string]bool{}
	}
	c.keys[k] = true
	c.out = append(c.out, planning.KeyedEvent{Key: k, Event: planning.Event{
		Site: m.site, Kind: "maintenance", Severity: m.severity,
		Starts: start.UTC(), Ends: end.UTC(), Detail: m.detail,
	}})
}

// span is an event's start as local wall time in its zone, and its length.
type span struct {
	wall time.Time // DTSTART as wall time, labelled UTC
	zone *zone
	date bool          // DTSTART is a DATE: the length is in whole local days
	days int           // the length of a DATE event
	len  time.Duration // the length of a DATE-TIME event
}

// end is the end of the occurrence that starts at start.
func (s span) end(start time.Time) time.Time {
	if s.date {
		return s.zone.toUTC(s.zone.toWall(start).AddDate(0, 0, s.days))
	}
	return start.Add(s.len)
}

// span reads DTSTART and DTEND or DURATION. An override that gives no end keeps the
// length of its series (inherit).
func (c *calendarReader) span(ev *vevent, inherit *span) (span, bool) {
	p := ev.comp.Props.Get(ical.PropDateTimeStart)
	if p == nil {
		c.fail(ev, "DTSTART", "missing; an event needs a start")
		return span{}, false
	}
	start, err := c.zones.parse(p)
	if err != nil {
		c.fail(ev, "DTSTART", "%v", err)
		return span{}, false
	}
	sp := span{wall: start.wall, zone: start.zone, date: start.date}
	end, dur := ev.comp.Props.Get(ical.PropDateTimeEnd), ev.comp.Props.Get(ical.PropDuration)
	switch {
	case end != nil && dur != nil:
		c.fail(ev, "DURATION", "an event has DTEND or DURATION, not both")
		return span{}, false
	case end != nil:
		e, err := c.zones.parse(end)
		if err != nil {
			c.fail(ev, "DTEND", "%v", err)
			return span{}, false
		}
		if e.date != sp.date {
			c.fail(ev, "DTEND", "is a %s but DTSTART is a %s", kindOf(e.date), kindOf(sp.date))
			return span{}, false
		}
		if sp.date {
			sp.days = int(e.wall.Sub(sp.wall) / (24 * time.Hour))
		} else {
			sp.len = e.zone.toUTC(e.wall).Sub(sp.zone.toUTC(sp.wall))
		}
	case dur != nil:
		d, err := dur.Duration()
		if err != nil {
			c.fail(ev, "DURATION", "%q is not a duration like PT2H or P1D", dur.Value)
			return span{}, false
		}
		if sp.date {
			if d%(24*time.Hour) != 0 {
				c.fail(ev, "DURATION", "%q is not whole days, as an all-day event's must be", dur.Value)
				return span{}, false
			}
			sp.days = int(d / (24 * time.Hour))
		} else {
			sp.len = d
		}
	case inherit != nil:
		sp.days, sp.len = inherit.days, inherit.len
		if sp.date != inherit.date {
			c.fail(ev, "DTSTART", "is a %s but the series' DTSTART is a %s", kindOf(sp.date), kindOf(inherit.date))
			return span{}, false
		}
	case sp.date:
		sp.days = 1 // RFC 5545: an all-day event with no end lasts the day
	}
	if sp.days <= 0 && sp.len <= 0 {
		column := "DTEND"
		if dur != nil {
			column = "DURATION"
		}
		if end == nil && dur == nil {
			c.fail(ev, column, "missing; a maintenance window needs a length (DTEND or DURATION)")
		} else {
			c.fail(ev, column, "the event ends at or before its start; a maintenance window needs a length")
		}
		return span{}, false
	}
	if time.Duration(sp.days)*24*time.Hour > maxLength || sp.len > maxLength {
		c.fail(ev, "DTEND", "the event lasts more than a year")
		return span{}, false
	}
	return sp, true
}

func kindOf(date bool) string {
	if date {
		return "DATE"
	}
	return "DATE-TIME"
}

// recurrenceID is the original start of the instance an override replaces.
func (c *calendarReader) recurrenceID(ev *vevent) (time.Time, bool) {
	p := ev.comp.Props.Get(ical.PropRecurrenceID)
	if strings.EqualFold(p.Params.Get(ical.ParamRange), "THISANDFUTURE") {
		c.fail(ev, "RECURRENCE-ID", "RANGE=THISANDFUTURE is not supported; split the series into two events")
		return time.Time{}, false
	}
	t, err := c.zones.parse(p)
	if err != nil {
		c.fail(ev, "RECURRENCE-ID", "%v", err)
		return time.Time{}, false
	}
	return t.zone.toUTC(t.wall), true
}

// occurrences are the starts of a series that may overlap the window: DTSTART, the
// RRULE's and the RDATEs', less the EXDATEs.
func (c *calendarReader) occurrences(ev *vevent, sp span) (starts []time.Time, ok bool) {
	// The earliest start that can overlap the window, and the latest.
	from, to := c.opt.From.Add(-maxLength), c.opt.To
	excluded := map[time.Time]bool{}
	for _, p := range ev.comp.Props.Values(ical.PropExceptionDates) {
		ts, ok := c.dates(ev, p)
		if !ok {
			return nil, false
		}
		for _, t := range ts {
			excluded[t] = true
		}
	}
	add := func(t time.Time) {
		if !excluded[t] && !t.Before(from) && t.Before(to) {
			starts = append(starts, t)
		}
	}
	add(sp.zone.toUTC(sp.wall))
	for _, p := range ev.comp.Props.Values(ical.PropRecurrenceDates) {
		ts, ok := c.dates(ev, p)
		if !ok {
			return nil, false
		}
		for _, t := range ts {
			add(t)
		}
	}
	if ev.comp.Props.Get(ical.PropRecurrenceRule) == nil {
		return starts, true
	}
	next, err := c.rule(ev.comp, sp)
	if err != nil {
		c.fail(ev, "RRULE", "%v", err)
		return nil, false
	}
	defer func() { // rrule-go is not written for hostile input
		if p := recover(); p != nil {
			c.fail(ev, "RRULE", "cannot expand the rule: %v", p)
			starts, ok = nil, false
		}
	}()
	for ; ; c.steps++ {
		w, more := next()
		if !more {
			return starts, true
		}
		if c.steps == maxSteps {
			c.fail(ev, "RRULE", "the calendar's rules repeat more than %d times before the window ends; start the series later", maxSteps)
			return nil, false
		}
		t := sp.zone.toUTC(w)
		if !t.Before(to) {
			return starts, true
		}
		add(t)
	}
}

// rule builds the RRULE's iterator over wall times. Its UNTIL, if written in UTC, is
// turned into the event's wall time, since the rule steps in wall time.
func (c *calendarReader) rule(comp *ical.Component, sp span) (next rrule.Next, err error) {
	defer func() {
		if p := recover(); p != nil {
			next, err = nil, fmt.Errorf("cannot read the rule: %v", p)
		}
	}()
	p := comp.Props.Get(ical.PropRecurrenceRule)
	opt, err := rrule.StrToROption(p.Value)
	if err != nil {
		return nil, fmt.Errorf("%q is not a recurrence rule: %v", p.Value, err)
	}
	if opt.Freq > rrule.DAILY || len(opt.Byminute) > 1 || len(opt.Bysecond) > 1 {
		return nil, errors.New("a maintenance window repeats daily at most; for several a day use FREQ=DAILY with BYHOUR")
	}
	if len(opt.Byeaster) > 0 {
		return nil, errors.New("BYEASTER is not iCalendar")
	}
	if sp.wall.Year()+250 < c.opt.To.Year() {
		return nil, errors.New("the series starts more than 250 years before the window, more than the rule library can step through")
	}
	if c.recurring++; c.recurring > maxSeries {
		return nil, fmt.Errorf("the calendar has more than %d recurring events", maxSeries)
	}
	opt.Dtstart = sp.wall
	if !opt.Until.IsZero() && untilIsUTC(p.Value) {
		opt.Until = sp.zone.toWall(opt.Until)
	}
	r, err := rrule.NewRRule(*opt)
	if err != nil {
		return nil, fmt.Errorf("%q is not a recurrence rule: %v", p.Value, err)
	}
	if never(*opt) {
		return func() (time.Time, bool) { return time.Time{}, false }, nil
	}
	return r.Iterator(), nil
}

// never says whether a rule gives no date at all, such as 30 February. rrule-go looks
// for the next date up to the year 9999 without a word, which for such a rule takes up
// to a tenth of a second. The calendar repeats every 400 years, weekdays too, and a
// rule keeps its phase over any multiple of INTERVAL periods (400 years are 146,097
// days, 20,871 weeks, 4,800 months), so it is tried near 9999 over two stretches of
// 292 years (what rrule-go steps through at most) that together cover one whole cycle.
func never(opt rrule.ROption) bool {
	n := max(opt.Interval, 1)
	cycle := 400 * n
	d := opt.Dtstart
	k := (rrule.MAXYEAR - 600 - d.Year()) / cycle
	if k <= 0 {
		return false // near 9999 already: few steps
	}
	opt.Count, opt.Until = 0, time.Time{}
	// The second stretch starts on the 1st of a month: the day of DTSTART that
	// rrule-go takes for a rule that names no day must be named.
	if len(opt.Byweekno) == 0 && len(opt.Byyearday) == 0 && len(opt.Bymonthday) == 0 && len(opt.Byweekday) == 0 {
		switch opt.Freq {
		case rrule.YEARLY:
			if len(opt.Bymonth) == 0 {
				opt.Bymonth = []int{int(d.Month())}
			}
			opt.Bymonthday = []int{d.Day()}
		case rrule.MONTHLY:
			opt.Bymonthday = []int{d.Day()}
		}
	}
	ceil := func(a int) int { return n * ((a + n - 1) / n) } // a rounded up to whole intervals
	// 400·n years on: the same date, weekday and phase.
	first := time.Date(d.Year()+k*cycle, d.Month(), d.Day(), d.Hour(), d.Minute(), d.Second(), 0, time.UTC)
	var second time.Time
	switch opt.Freq {
	case rrule.DAILY:
		second = first.AddDate(0, 0, ceil(73000))
	case rrule.WEEKLY:
		second = first.AddDate(0, 0, 7*ceil(10436))
	case rrule.MONTHLY:
		second = time.Date(first.Year(), first.Month()+time.Month(ceil(2400)), 1, d.Hour(), d.Minute(), d.Second(), 0, time.UTC)
	case rrule.YEARLY:
		second = time.Date(first.Year()+ceil(200), first.Month(), 1, d.Hour(), d.Minute(), d.Second(), 0, time.UTC)
	default:
		return false
	}
	for _, start := range []time.Time{first, second} {
		probe := opt
		probe.Dtstart = start
		r, err := rrule.NewRRule(probe)
		if err != nil {
			return false
		}
		if _, ok := r.Iterator()(); ok {
			return false
		}
	}
	return true
}

func untilIsUTC(rule string) bool {
	for part := range strings.SplitSeq(rule, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && strings.EqualFold(k, "UNTIL") {
			return strings.HasSuffix(strings.ToUpper(v), "Z")
		}
	}
	return false
}

// dates reads an RDATE or EXDATE: one or more comma-separated dates or date-times.
func (c *calendarReader) dates(ev *vevent, p ical.Prop) ([]time.Time, bool) {
	if strings.EqualFold(p.Params.Get(ical.ParamValue), string(ical.ValuePeriod)) {
		c.fail(ev, p.Name, "VALUE=PERIOD is not supported; give the start only")
		return nil, false
	}
	var ts []time.Time
	for v := range strings.SplitSeq(p.Value, ",") {
		one := p
		one.Value = strings.TrimSpace(v)
		t, err := c.zones.parse(&one)
		if err != nil {
			c.fail(ev, p.Name, "%v", err)
			return nil, false
		}
		ts = append(ts, t.zone.toUTC(t.wall))
	}
	return ts, true
}

// eventMeta is what every occurrence of an event shares.
type eventMeta struct {
	site, severity, detail string
}

func (c *calendarReader) meta(ev *vevent) (eventMeta, bool) {
	site, ok := c.site(ev)
	if !ok {
		return eventMeta{}, false
	}
	sev, ok := c.severity(ev)
	if !ok {
		return eventMeta{}, false
	}
	return eventMeta{site: site, severity: sev, detail: detail(ev.comp)}, true
}

// site is, in order: X-PMO-SITE; LOCATION if it is a known site; the first CATEGORIES
// entry that is a known site; the default site.
func (c *calendarReader) site(ev *vevent) (string, bool) {
	if s := propText(ev.comp, "X-PMO-SITE"); s != "" {
		if c.opt.Sites == nil {
			return s, true
		}
		if k := knownSite(c.opt.Sites, s); k != "" {
			return k, true
		}
		c.fail(ev, "X-PMO-SITE", "%q is not a known site (known: %s)", s, strings.Join(c.opt.Sites, ", "))
		return "", false
	}
	if k := knownSite(c.opt.Sites, propText(ev.comp, ical.PropLocation)); k != "" {
		return k, true
	}
	for _, cat := range categories(ev.comp) {
		if k := knownSite(c.opt.Sites, cat); k != "" {
			return k, true
		}
	}
	if c.opt.Site != "" {
		if k := knownSite(c.opt.Sites, c.opt.Site); k != "" {
			return k, true
		}
		return c.opt.Site, true
	}
	reason := "the event names no site: give X-PMO-SITE"
	if c.opt.Sites != nil {
		reason += ", or a LOCATION or CATEGORIES entry that is a site (" + strings.Join(c.opt.Sites, ", ") + ")"
	}
	c.fail(ev, "X-PMO-SITE", "%s, or a default site", reason)
	return "", false
}

// knownSite is the ID in sites that s names, ignoring case and blanks; "" if none.
func knownSite(sites []string, s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	for _, id := range sites {
		if strings.EqualFold(id, s) {
			return id
		}
	}
	return ""
}

// severities in rising order.
var severities = []string{"info", "warning", "critical"}

// severity is, in order: X-PMO-SEVERITY; PRIORITY (1–4 critical, 5 warning, 6–9 info,
// as RFC 5545 maps nine levels to three; 0 is undefined); the highest CATEGORIES entry
// that is a severity; "info".
func (c *calendarReader) severity(ev *vevent) (string, bool) {
	if s := propText(ev.comp, "X-PMO-SEVERITY"); s != "" {
		if slices.Contains(severities, strings.ToLower(s)) {
			return strings.ToLower(s), true
		}
		c.fail(ev, "X-PMO-SEVERITY", "%q is not a severity; want info, warning or critical", s)
		return "", false
	}
	if p := ev.comp.Props.Get(ical.PropPriority); p != nil {
		n, err := strconv.Atoi(strings.TrimSpace(p.Value))
		if err != nil || n < 0 || n > 9 {
			c.fail(ev, "PRIORITY", "%q is not a priority; want 0 to 9", p.Value)
			return "", false
		}
		switch {
		case n >= 1 && n <= 4:
			return "critical", true
		case n == 5:
			return "warning", true
		case n >= 6:
			return "info", true
		}
	}
	best := -1
	for _, cat := range categories(ev.comp) {
		best = max(best, slices.Index(severities, strings.ToLower(strings.TrimSpace(cat))))
	}
	if best >= 0 {
		return severities[best], true
	}
	return "info", true
}

// detail is the SUMMARY, then the DESCRIPTION on one line, cut to maxDetail runes.
func detail(comp *ical.Component) string {
	d := strings.Join(strings.Fields(propText(comp, ical.PropSummary)), " ")
	if desc := strings.Join(strings.Fields(propText(comp, ical.PropDescription)), " "); desc != "" {
		if d != "" {
			d += ": "
		}
		d += desc
	}
	if d == "" {
		d = "maintenance window"
	}
	if utf8.RuneCountInString(d) > maxDetail {
		d = string([]rune(d)[:maxDetail-1]) + "…"
	}
	return d
}

func cancelled(comp *ical.Component) bool {
	return strings.EqualFold(propText(comp, ical.PropStatus), string(ical.EventCancelled))
}

// propText is a text property unescaped, or its raw value if it is not valid text
// (exporters are sloppy with escapes), trimmed.
func propText(comp *ical.Component, name string) string {
	p := comp.Props.Get(name)
	if p == nil {
		return ""
	}
	l, err := p.TextList()
	if err != nil {
		return strings.TrimSpace(p.Value)
	}
	return strings.TrimSpace(strings.Join(l, ","))
}

// categories are the entries of every CATEGORIES property.
func categories(comp *ical.Component) []string {
	var out []string
	for _, p := range comp.Props.Values(ical.PropCategories) {
		l, err := p.TextList()
		if err != nil {
			l = strings.Split(p.Value, ",")
		}
		out = append(out, l...)
	}
	return out
}

// stamp is a DATE or DATE-TIME value: a wall time (labelled UTC) in a zone.
type stamp struct {
	wall time.Time
	zone *zone
	date bool
}

// zone turns wall times of one time zone into instants and back, from Go's time zone
// database or from a VTIMEZONE's transitions.
type zone struct {
	loc   *time.Location // from the time zone database; nil for a VTIMEZONE
	trans []transition   // a VTIMEZONE's, by instant
	first time.Duration  // the UTC offset before the first transition
}

// transition is the instant a VTIMEZONE observance starts and its UTC offset.
type transition struct {
	at     time.Time
	offset time.Duration
}

var utcZone = &zone{loc: time.UTC}

// toUTC is the instant of a wall time. A wall time that a change to summer time skips
// is read with the offset before the change, as Go's time.Date does.
func (z *zone) toUTC(wall time.Time) time.Time {
	if z.loc != nil {
		return time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), z.loc).UTC()
	}
	for i := len(z.trans) - 1; i >= 0; i-- { // the window is near the end: few steps
		if t := wall.Add(-z.trans[i].offset); !t.Before(z.trans[i].at) {
			return t
		}
	}
	return wall.Add(-z.first)
}

// toWall is the wall time of an instant, labelled UTC.
func (z *zone) toWall(t time.Time) time.Time {
	if z.loc != nil {
		w := t.In(z.loc)
		return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.UTC)
	}
	off := z.first
	if i, _ := slices.BinarySearchFunc(z.trans, t, func(tr transition, t time.Time) int {
		if tr.at.After(t) {
			return 1
		}
		return -1
	}); i > 0 {
		off = z.trans[i-1].offset
	}
	return t.UTC().Add(off)
}

// zones are the time zones a calendar's TZIDs name.
type zones struct {
	vtz   map[string]*ical.Component // the calendar's VTIMEZONEs by TZID
	cache map[string]*zone
	limit time.Time // VTIMEZONE transitions are computed up to here
	def   *zone     // of DATE values and floating times
}

// maxTransitions bounds the onsets of one VTIMEZONE observance (a yearly rule from
// 1601, as Outlook writes, has about 430 up to now).
const maxTransitions = 5000

// newZones reads a calendar's VTIMEZONEs and its default zone: X-WR-TIMEZONE, as Google
// and Apple write it, else UTC.
func newZones(cal *ical.Calendar, to time.Time) (*zones, error) {
	z := &zones{vtz: map[string]*ical.Component{}, cache: map[string]*zone{}, limit: to.AddDate(1, 0, 0), def: utcZone}
	for _, child := range cal.Children {
		if child.Name == ical.CompTimezone {
			z.vtz[tzid(propText(child, ical.PropTimezoneID))] = child
		}
	}
	if name := propText(cal.Component, "X-WR-TIMEZONE"); name != "" {
		d, err := z.get(name)
		if err != nil {
			return nil, fmt.Errorf("X-WR-TIMEZONE: %w", err)
		}
		z.def = d
	}
	return z, nil
}

// tzid drops the "/" that marks a globally unique TZID.
func tzid(s string) string { return strings.TrimPrefix(strings.TrimSpace(s), "/") }

// get is the zone a TZID names: the calendar's VTIMEZONE for it, which is what the
// calendar meant (Outlook's TZIDs, such as "W. Europe Standard Time", are only
// there), else Go's time zone database.
func (z *zones) get(name string) (*zone, error) {
	id := tzid(name)
	if zn, ok := z.cache[id]; ok {
		return zn, nil
	}
	var zn *zone
	var err error
	if comp, ok := z.vtz[id]; ok {
		zn, err = fromVTimezone(comp, z.limit)
	}
	if zn == nil {
		loc, lerr := time.LoadLocation(id)
		switch {
		case lerr == nil && id != "" && id != "Local":
			zn, err = &zone{loc: loc}, nil
		case err != nil:
			return nil, fmt.Errorf("time zone %q: its VTIMEZONE: %v", id, err)
		default:
			return nil, fmt.Errorf("unknown time zone %q: no VTIMEZONE for it in the file and not in the time zone database", id)
		}
	}
	z.cache[id] = zn
	return zn, nil
}

// parse reads a DATE or DATE-TIME property: UTC if it ends in Z, in its TZID's zone if
// it has one, else (a DATE or a floating time) in the calendar's default zone.
func (z *zones) parse(p *ical.Prop) (stamp, error) {
	v := strings.TrimSpace(p.Value)
	vt := strings.ToUpper(p.Params.Get(ical.ParamValue))
	switch {
	case vt == string(ical.ValueDate) || (vt == "" && len(v) == len("20060102")):
		d, err := time.Parse("20060102", v)
		if err != nil {
			return stamp{}, fmt.Errorf("%q is not a date like 20261114", v)
		}
		return stamp{wall: d, zone: z.def, date: true}, nil
	case vt != "" && vt != string(ical.ValueDateTime):
		return stamp{}, fmt.Errorf("VALUE=%s is not a date or a date-time", vt)
	}
	if strings.HasSuffix(v, "Z") {
		t, err := time.Parse("20060102T150405Z", v)
		if err != nil {
			return stamp{}, fmt.Errorf("%q is not a date-time like 20261114T010000Z", v)
		}
		return stamp{wall: t, zone: utcZone}, nil
	}
	t, err := time.Parse("20060102T150405", v)
	if err != nil {
		return stamp{}, fmt.Errorf("%q is not a date-time like 20261114T020000", v)
	}
	zn := z.def
	if id := p.Params.Get(ical.ParamTimezoneID); id != "" {
		if zn, err = z.get(id); err != nil {
			return stamp{}, err
		}
	}
	return stamp{wall: t, zone: zn}, nil
}

// fromVTimezone computes a VTIMEZONE's transitions up to limit: each STANDARD or
// DAYLIGHT observance starts at its DTSTART, its RDATEs and its RRULE's dates, given as
// wall times in its TZOFFSETFROM.
func fromVTimezone(comp *ical.Component, limit time.Time) (zn *zone, err error) {
	defer func() { // rrule-go is not written for hostile input
		if p := recover(); p != nil {
			zn, err = nil, fmt.Errorf("cannot expand its rules: %v", p)
		}
	}()
	zn = &zone{}
	var firstAt time.Time
	for _, obs := range comp.Children {
		if obs.Name != ical.CompTimezoneStandard && obs.Name != ical.CompTimezoneDaylight {
			continue
		}
		from, err := utcOffset(obs, ical.PropTimezoneOffsetFrom)
		if err != nil {
			return nil, err
		}
		to, err := utcOffset(obs, ical.PropTimezoneOffsetTo)
		if err != nil {
			return nil, err
		}
		p := obs.Props.Get(ical.PropDateTimeStart)
		if p == nil {
			return nil, fmt.Errorf("%s has no DTSTART", obs.Name)
		}
		start, err := time.Parse("20060102T150405", strings.TrimSpace(p.Value))
		if err != nil {
			return nil, fmt.Errorf("%s: DTSTART %q is not a local date-time like 19701025T030000", obs.Name, p.Value)
		}
		onsets := []time.Time{start}
		for _, rd := range obs.Props.Values(ical.PropRecurrenceDates) {
			for v := range strings.SplitSeq(rd.Value, ",") {
				t, err := time.Parse("20060102T150405", strings.TrimSpace(v))
				if err != nil {
					return nil, fmt.Errorf("%s: RDATE %q is not a local date-time", obs.Name, v)
				}
				onsets = append(onsets, t)
			}
		}
		if rr := obs.Props.Get(ical.PropRecurrenceRule); rr != nil {
			opt, err := rrule.StrToROption(rr.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: RRULE %q: %v", obs.Name, rr.Value, err)
			}
			if opt.Freq != rrule.YEARLY || len(opt.Byeaster) > 0 {
				// Zones change offset once or twice a year; a finer rule that never
				// matches would keep rrule-go busy up to the year 9999.
				return nil, fmt.Errorf("%s: RRULE %q: want a yearly rule", obs.Name, rr.Value)
			}
			if !opt.Until.IsZero() && untilIsUTC(rr.Value) {
				opt.Until = opt.Until.Add(from)
			}
			// rrule-go stops silently 292 years (a time.Duration) after its start, and
			// Outlook starts its rules in 1601. The Gregorian calendar repeats every
			// 400 years, weekdays too, so a yearly or monthly rule started 400 years
			// later gives the same dates from then on.
			if opt.Count == 0 && (opt.Freq == rrule.YEARLY || opt.Freq == rrule.MONTHLY) {
				for start.Year()+250 < limit.Year() {
					start = start.AddDate(400*max(opt.Interval, 1), 0, 0)
				}
			}
			opt.Dtstart = start
			r, err := rrule.NewRRule(*opt)
			if err != nil {
				return nil, fmt.Errorf("%s: RRULE %q: %v", obs.Name, rr.Value, err)
			}
			next := r.Iterator()
			for n := 0; ; n++ {
				w, ok := next()
				if !ok || w.After(limit) {
					break
				}
				if n == maxTransitions {
					return nil, fmt.Errorf("%s: RRULE %q changes the offset more than %d times", obs.Name, rr.Value, maxTransitions)
				}
				onsets = append(onsets, w)
			}
		}
		for _, w := range onsets {
			at := w.Add(-from)
			zn.trans = append(zn.trans, transition{at: at, offset: to})
			if firstAt.IsZero() || at.Before(firstAt) {
				firstAt, zn.first = at, from
			}
		}
	}
	if len(zn.trans) == 0 {
		return nil, errors.New("no STANDARD or DAYLIGHT observance")
	}
	slices.SortFunc(zn.trans, func(a, b transition) int { return a.at.Compare(b.at) })
	return zn, nil
}

// utcOffset reads a TZOFFSETFROM or TZOFFSETTO: +HHMM, -HHMM or ±HHMMSS.
func utcOffset(obs *ical.Component, name string) (time.Duration, error) {
	p := obs.Props.Get(name)
	if p == nil {
		return 0, fmt.Errorf("%s has no %s", obs.Name, name)
	}
	v := strings.TrimSpace(p.Value)
	bad := fmt.Errorf("%s: %s %q is not a UTC offset like +0100", obs.Name, name, p.Value)
	if (len(v) != 5 && len(v) != 7) || (v[0] != '+' && v[0] != '-') {
		return 0, bad
	}
	var parts [3]int
	for i := 0; 1+2*i < len(v); i++ {
		n, err := strconv.Atoi(v[1+2*i : 3+2*i])
		if err != nil || n < 0 || n > 59 {
			return 0, bad
		}
		parts[i] = n
	}
	d := time.Duration(parts[0])*time.Hour + time.Duration(parts[1])*time.Minute + time.Duration(parts[2])*time.Second
	if v[0] == '-' {
		d = -d
	}
	return d, nil
}

// CalendarSource names an iCalendar file of maintenance windows: a file (one the web
// staged, or the operator's own for the command line) or a URL. Only the name goes
// through workflow history, never the calendar.
type CalendarSource struct {
	// Name tells one calendar from another: its events are keyed
	// ics/<name>/<UID>/<start>, and a later import of the calendar of that name
	// replaces them (see CalendarBatch).
	Name string
	Path string `json:",omitempty"`
	URL  string `json:",omitempty"`
	// Site is the site of events that name none.
	Site string `json:",omitempty"`
	// From and To bound the occurrences imported.
	From, To time.Time
}

// DefaultCalendar is the name of a calendar that is given none.
const DefaultCalendar = "maintenance"

// CalendarName checks a calendar's name: a short word that can sit in an event key.
func CalendarName(name string) error {
	if name == "" || len(name) > 64 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return fmt.Errorf("%q: want 1 to 64 letters, digits, dots, dashes or underscores", name)
	}
	return nil
}

// MaxCalendarBytes bounds a calendar file or download.
const MaxCalendarBytes = 16 << 20

// CalendarURL checks a calendar's address: http or https, or webcal, which is https
// by another name.
func CalendarURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "webcal", "webcals":
		u.Scheme = "https"
	case "http", "https":
	default:
		return "", fmt.Errorf("%q: want an http, https or webcal URL", raw)
	}
	return u.String(), nil
}

// KeyPrefix begins the key of every event of the calendar of src's name.
func (src CalendarSource) KeyPrefix() string { return "ics/" + src.Name + "/" }

// Read reads the calendar src names from r, at most MaxCalendarBytes, and returns its
// maintenance windows in [src.From, src.To) at the known sites, keyed
// ics/<name>/<UID>/<start>. A calendar that is too large or is not iCalendar is
// ErrUnreadable, as is one read for a window or default site that cannot be; bad
// events are Errors. Only an error reading r may pass if tried again.
func (src CalendarSource) Read(r io.Reader, sites []string) ([]planning.KeyedEvent, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxCalendarBytes+1))
	if err != nil {
		return nil, fmt.Errorf("calendar: %w", err)
	}
	if len(data) > MaxCalendarBytes {
		return nil, readError{fmt.Errorf("calendar: larger than %d bytes", MaxCalendarBytes)}
	}
	events, err := ReadCalendar(bytes.NewReader(data), CalendarOptions{Site: src.Site, From: src.From, To: src.To, Sites: sites})
	var bad Errors
	if err != nil && !errors.As(err, &bad) {
		return nil, readError{err} // not iCalendar, or a window or site that cannot be
	}
	if err != nil {
		return nil, err
	}
	for i := range events {
		events[i].Source = planning.SourceCalendar
		events[i].Key = src.KeyPrefix() + strings.TrimPrefix(events[i].Key, "ics/")
	}
	return events, nil
}

// EventBatch is a batch of system events to record and of events to close, at most
// planning.MaxEventBatch in all, from an operator, Alertmanager or a calendar:
// EventsWorkflow's input.
type EventBatch struct {
	Events []planning.KeyedEvent
	Close  []planning.EventClose
	// SkipUnknownSites leaves out, and reports, events at sites PMO does not know
	// instead of refusing the batch: an Alertmanager watches more than PMO's sites.
	SkipUnknownSites bool
	// Calendar, if set, is an iCalendar file or URL whose maintenance windows join
	// Events; a staged file is removed once it is recorded or rejected.
	Calendar *CalendarSource `json:",omitempty"`
}
