package activities

import (
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

// calendarFetchTimeout bounds a calendar download.
const calendarFetchTimeout = 30 * time.Second

// LoadCalendar reads the calendar src names and returns its maintenance windows in
// [src.From, src.To) at the known sites (imports.CalendarSource.Read). A calendar that
// cannot be imported (bad events, listed as imports.Errors in the details; not
// iCalendar; larger than imports.MaxCalendarBytes) fails for good with
// validation.InvalidRowsErrorType; a download that fails now may be retried. hosts are
// those a URL may name (config.Config.CalendarHosts).
func LoadCalendar(ctx context.Context, src imports.CalendarSource, sites, hosts []string) ([]planning.KeyedEvent, error) {
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
	events, err := src.Read(r, sites)
	if badFile(err) {
		return nil, rejected(err) // the same file fails the same way every time
	}
	return events, err
}

// CalendarBatch loads the calendar src names, at the known sites, and makes the batch
// that brings its window up to date: every occurrence in it, and a close (a cancel: at its start) of
// each event that an earlier import of the calendar of that name recorded in the
// window and the calendar no longer holds, so that a window moved, cancelled or
// deleted in the calendar leaves the plan.
func CalendarBatch(ctx context.Context, s EventStore, src imports.CalendarSource, sites, hosts []string) (imports.EventBatch, error) {
	if err := imports.CalendarName(src.Name); err != nil {
		return imports.EventBatch{}, temporal.NewNonRetryableApplicationError("calendar: name "+err.Error(), validation.InvalidRowsErrorType, nil)
	}
	events, err := LoadCalendar(ctx, src, sites, hosts)
	if err != nil {
		return imports.EventBatch{}, err
	}
	if n := len(events); n > planning.MaxEventBatch {
		return imports.EventBatch{}, invalidField(validation.ApplicationErrorType, validation.Field("days",
			"the calendar has %d occurrences from %s to %s, over the %d one import takes: import a shorter window",
			n, src.From.Format(time.RFC3339), src.To.Format(time.RFC3339), planning.MaxEventBatch))
	}
	recorded, err := s.Events(ctx, src.From, src.To)
	if err != nil {
		return imports.EventBatch{}, err
	}
	keep := make(map[string]bool, len(events))
	for _, e := range events {
		keep[e.Key] = true
	}
	batch := imports.EventBatch{Events: events}
	for _, e := range recorded {
		if e.Source == planning.SourceCalendar && strings.HasPrefix(e.Key, src.KeyPrefix()) && !keep[e.Key] {
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
	u, err := imports.CalendarURL(raw)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("calendar: "+err.Error(), validation.InvalidRowsErrorType, nil)
	}
	parsed, _ := url.Parse(u)
	if err := allowedHost(parsed, hosts); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), validation.InvalidRowsErrorType, err)
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
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), validation.InvalidRowsErrorType, err)
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		err := fmt.Errorf("calendar: fetch %s: %s", u, resp.Status)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), validation.InvalidRowsErrorType, err)
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
