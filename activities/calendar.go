package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

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

// calendarFetchTimeout bounds a calendar download.
const calendarFetchTimeout = 30 * time.Second

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

// LoadCalendar reads the calendar src names and returns its maintenance windows in
// [src.From, src.To) at the known sites. A calendar that cannot be imported (bad
// events, listed as imports.Errors in the details; not iCalendar; larger than
// MaxCalendarBytes) fails for good with ErrTypeInvalidRows; a download that fails
// now may be retried. hosts are those a URL may name (config.Config.CalendarHosts).
func LoadCalendar(ctx context.Context, src CalendarSource, sites, hosts []string) ([]planning.KeyedEvent, error) {
	var r io.ReadCloser
	switch {
	case src.URL != "":
		body, err := fetchCalendar(ctx, src.URL, hosts)
		if err != nil {
			return nil, err
		}
		r = body
	case src.Path != "":
		f, err := os.Open(src.Path)
		if err != nil {
			return nil, err
		}
		r = f
	default:
		return nil, errors.New("calendar: name a file or a URL")
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, MaxCalendarBytes+1))
	if err != nil {
		return nil, fmt.Errorf("calendar: %w", err)
	}
	if len(data) > MaxCalendarBytes {
		return nil, rejected(fmt.Errorf("calendar: larger than %d bytes", MaxCalendarBytes))
	}
	events, err := imports.ReadCalendar(bytes.NewReader(data), imports.CalendarOptions{Site: src.Site, From: src.From, To: src.To, Sites: sites})
	if err != nil {
		return nil, rejected(err) // the same file fails the same way every time
	}
	for i := range events {
		events[i].Source = planning.SourceCalendar
		events[i].Key = calendarPrefix(src.Name) + strings.TrimPrefix(events[i].Key, "ics/")
	}
	return events, nil
}

// calendarPrefix begins the key of every event of the calendar of that name.
func calendarPrefix(name string) string { return "ics/" + name + "/" }

// CalendarBatch loads the calendar src names, at the known sites, and makes the batch
// that brings its window up to date: every occurrence in it, and a close (a cancel: at its start) of
// each event that an earlier import of the calendar of that name recorded in the
// window and the calendar no longer holds, so that a window moved, cancelled or
// deleted in the calendar leaves the plan.
func CalendarBatch(ctx context.Context, s EventStore, src CalendarSource, sites, hosts []string) (RecordEventsInput, error) {
	if err := CalendarName(src.Name); err != nil {
		return RecordEventsInput{}, temporal.NewNonRetryableApplicationError("calendar: name "+err.Error(), ErrTypeInvalidRows, nil)
	}
	events, err := LoadCalendar(ctx, src, sites, hosts)
	if err != nil {
		return RecordEventsInput{}, err
	}
	if n := len(events); n > planning.MaxEventBatch {
		return RecordEventsInput{}, invalidField(validation.ApplicationErrorType, validation.Field("days",
			"the calendar has %d occurrences from %s to %s, over the %d one import takes: import a shorter window",
			n, src.From.Format(time.RFC3339), src.To.Format(time.RFC3339), planning.MaxEventBatch))
	}
	recorded, err := s.Events(ctx, src.From, src.To)
	if err != nil {
		return RecordEventsInput{}, err
	}
	keep := make(map[string]bool, len(events))
	for _, e := range events {
		keep[e.Key] = true
	}
	batch := RecordEventsInput{Events: events}
	for _, e := range recorded {
		if e.Source == planning.SourceCalendar && strings.HasPrefix(e.Key, calendarPrefix(src.Name)) && !keep[e.Key] {
			batch.Close = append(batch.Close, planning.EventClose{Key: e.Key, At: e.Starts})
		}
	}
	return batch, nil
}

// errPrivateAddress is a calendar host that resolves to an address of this network.
var errPrivateAddress = errors.New("is an address of this network (loopback, link-local or private); name the host in PMO_CALENDAR_HOSTS to allow it")

// calendarClient fetches calendars from the hosts allowed: with hosts, those hosts
// only (an intranet server among them), redirects too; without, any host whose
// addresses are public, checked when connecting, so that a name that resolves to this
// network (or is made to, later) cannot reach the worker's neighbours.
func calendarClient(hosts []string) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if len(hosts) == 0 {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip, err := netip.ParseAddr(host); err == nil && !publicAddr(ip) {
				return fmt.Errorf("calendar: %s %w", host, errPrivateAddress)
			}
			return nil
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy, transport.DialContext = nil, dialer.DialContext
	return &http.Client{Transport: transport, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("calendar: more than 10 redirects")
		}
		return allowedHost(req.URL, hosts)
	}}
}

// publicAddr reports whether ip is an address of the internet, not of this network.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast()
}

// errHostNotAllowed is a calendar URL whose host PMO_CALENDAR_HOSTS does not list.
var errHostNotAllowed = errors.New("is not in PMO_CALENDAR_HOSTS")

// allowedHost refuses a URL whose host (or host:port) hosts do not list, when they
// list any.
func allowedHost(u *url.URL, hosts []string) error {
	if len(hosts) == 0 || slices.Contains(hosts, u.Host) || slices.Contains(hosts, u.Hostname()) {
		return nil
	}
	return fmt.Errorf("calendar: host %s %w", u.Host, errHostNotAllowed)
}

// fetchCalendar downloads a calendar from a host allowed (calendarClient). A server
// that refuses it (4xx) or a host not allowed fails for good; other failures may pass.
func fetchCalendar(ctx context.Context, raw string, hosts []string) (io.ReadCloser, error) {
	u, err := CalendarURL(raw)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("calendar: "+err.Error(), ErrTypeInvalidRows, nil)
	}
	parsed, _ := url.Parse(u)
	if err := allowedHost(parsed, hosts); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidRows, err)
	}
	ctx, cancel := context.WithTimeout(ctx, calendarFetchTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/calendar")
	resp, err := calendarClient(hosts).Do(req)
	if err != nil {
		cancel()
		err = fmt.Errorf("calendar: fetch %s: %w", u, err)
		if errors.Is(err, errPrivateAddress) || errors.Is(err, errHostNotAllowed) {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidRows, err)
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		err := fmt.Errorf("calendar: fetch %s: %s", u, resp.Status)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidRows, err)
		}
		return nil, err
	}
	return cancelOnClose{resp.Body, cancel}, nil
}

// cancelOnClose ends a download's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

// Close closes the body and ends the context.
func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
