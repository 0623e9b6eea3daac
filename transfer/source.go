package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pmo-dev/pmo/sources"
)

// source is where a disk image is read from.
type source interface {
	// Size returns the source's length in bytes, or -1 when it cannot be known
	// without reading it.
	Size(ctx context.Context) (int64, error)
	// Open returns a reader from offset on, with the source's total size (-1 if
	// unknown). When the source cannot start at offset (a server that ignores Range,
	// a source shorter than offset), it starts at 0 and says so in start.
	Open(ctx context.Context, offset int64) (r io.ReadCloser, start, size int64, err error)
	// Remote reports whether reading the source uses the connector's link, so that
	// verification reads are paced like the copy.
	Remote() bool
	String() string
}

// openSource picks the source driver for a path, file:// URI or http(s) URL. A
// non-nil allowed must hold the source, and a redirect's target, before anything is
// opened. A non-nil onRead is called with the duration of every read from it.
func openSource(spec string, allowed *sources.List, client *http.Client, onRead func(time.Duration)) (source, error) {
	s, err := sourceFor(spec, allowed, client)
	if err != nil || onRead == nil {
		return s, err
	}
	return timedSource{source: s, onRead: onRead}, nil
}

func sourceFor(spec string, allowed *sources.List, client *http.Client) (source, error) {
	switch {
	case spec == "":
		return nil, fmt.Errorf("%w: empty source", ErrBadSource)
	case strings.Contains(spec, "://") && !strings.HasPrefix(spec, "http://") && !strings.HasPrefix(spec, "https://") &&
		!strings.HasPrefix(spec, "file://"):
		return nil, fmt.Errorf("%w: %q: unsupported scheme (want a path, file://, http:// or https://)", ErrBadSource, spec)
	}
	if allowed != nil {
		if err := allowed.Check(spec); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadSource, err)
		}
	}
	switch {
	case strings.HasPrefix(spec, "http://"), strings.HasPrefix(spec, "https://"):
		if _, err := url.Parse(spec); err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrBadSource, spec, err)
		}
		if client == nil {
			client = http.DefaultClient
		}
		if allowed != nil {
			client = withinList(client, allowed)
		}
		return &httpSource{url: spec, client: client}, nil
	case allowed != nil:
		// The file is opened by the path its links resolve to, so that a link inside
		// an allowed folder cannot lead out of it.
		p, err := allowed.ResolvedFile(spec)
		if errors.Is(err, sources.ErrOutside) {
			return nil, fmt.Errorf("%w: %w", ErrBadSource, err)
		}
		if err != nil {
			return nil, sourceErr(stringer(spec), err)
		}
		return fileSource(p), nil
	case strings.HasPrefix(spec, "file://"):
		p, err := sources.FilePath(spec)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrBadSource, spec, err)
		}
		return fileSource(p), nil
	default:
		return fileSource(spec), nil
	}
}

// withinList is client with redirects followed only to URLs the list allows.
func withinList(client *http.Client, allowed *sources.List) *http.Client {
	c := *client
	next := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := allowed.CheckURL(req.URL); err != nil {
			return fmt.Errorf("%w: redirected: %w", ErrBadSource, err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// stringer names a source in an error before it has a driver.
type stringer string

func (s stringer) String() string { return string(s) }

// fileSource is a local file.
type fileSource string

func (f fileSource) String() string { return string(f) }

func (f fileSource) Remote() bool { return false }

func (f fileSource) Size(context.Context) (int64, error) {
	st, err := os.Stat(string(f))
	if err != nil {
		return 0, sourceErr(f, err)
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%w: %s is not a regular file", ErrBadSource, f)
	}
	return st.Size(), nil
}

func (f fileSource) Open(ctx context.Context, offset int64) (io.ReadCloser, int64, int64, error) {
	size, err := f.Size(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	r, err := os.Open(string(f))
	if err != nil {
		return nil, 0, 0, sourceErr(f, err)
	}
	if offset > size {
		offset = 0
	}
	if _, err := r.Seek(offset, io.SeekStart); err != nil {
		r.Close()
		return nil, 0, 0, fmt.Errorf("transfer: seek %s to %d: %w", f, offset, err)
	}
	return r, offset, size, nil
}

// timedSource times the reads of the readers its source opens, so that a caller can
// tell how fast the VM's disk answers apart from how fast the link lets bytes through.
type timedSource struct {
	source
	onRead func(time.Duration)
}

func (t timedSource) Open(ctx context.Context, offset int64) (io.ReadCloser, int64, int64, error) {
	r, start, size, err := t.source.Open(ctx, offset)
	if err != nil {
		return nil, start, size, err
	}
	return timedReader{ReadCloser: r, onRead: t.onRead}, start, size, nil
}

// timedReader reports the duration of every read that returned data; the empty read
// at the end says nothing about the disk.
type timedReader struct {
	io.ReadCloser
	onRead func(time.Duration)
}

func (t timedReader) Read(p []byte) (int, error) {
	began := time.Now()
	n, err := t.ReadCloser.Read(p)
	if n > 0 {
		t.onRead(time.Since(began))
	}
	return n, err
}

func sourceErr(src fmt.Stringer, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s: %v", ErrNotFound, src, err)
	}
	return fmt.Errorf("transfer: source %s: %w", src, err)
}

// httpSource is an HTTP(S) URL; resumes use Range requests.
type httpSource struct {
	url    string
	client *http.Client
}

func (h *httpSource) String() string { return h.url }

func (h *httpSource) Remote() bool { return true }

func (h *httpSource) Size(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, h.url, nil)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrBadSource, h.url, err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("transfer: HEAD %s: %w", h.url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, h.statusErr("HEAD", resp)
	}
	return resp.ContentLength, nil
}

func (h *httpSource) Open(ctx context.Context, offset int64) (io.ReadCloser, int64, int64, error) {
	resp, err := h.get(ctx, offset)
	if err != nil {
		return nil, 0, 0, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		// No Range asked, or the server ignored it: the body starts at 0.
		return resp.Body, 0, resp.ContentLength, nil
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			resp.Body.Close()
			return nil, 0, 0, fmt.Errorf("transfer: GET %s: asked for bytes from %d, got Content-Range %q",
				h.url, offset, resp.Header.Get("Content-Range"))
		}
		return resp.Body, offset, total, nil
	case http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		// "bytes */N": the offset is at or past the end. At the end there is
		// nothing left to copy; past it the partial is longer than the source, so
		// start again.
		if _, total, ok := parseContentRange(resp.Header.Get("Content-Range")); ok && total == offset {
			return io.NopCloser(strings.NewReader("")), offset, total, nil
		}
		resp, err = h.get(ctx, 0)
		if err != nil {
			return nil, 0, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			return nil, 0, 0, h.statusErr("GET", resp)
		}
		return resp.Body, 0, resp.ContentLength, nil
	default:
		defer resp.Body.Close()
		return nil, 0, 0, h.statusErr("GET", resp)
	}
}

func (h *httpSource) get(ctx context.Context, offset int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadSource, h.url, err)
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("transfer: GET %s: %w", h.url, err)
	}
	return resp, nil
}

// statusErr classifies a failed response: a missing source or a refused request will
// not get better by retrying, a server error may.
func (h *httpSource) statusErr(method string, resp *http.Response) error {
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return fmt.Errorf("%w: %s %s: %s", ErrNotFound, method, h.url, resp.Status)
	case resp.StatusCode >= 400 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return fmt.Errorf("%w: %s %s: %s", ErrBadSource, method, h.url, resp.Status)
	default:
		return fmt.Errorf("transfer: %s %s: %s", method, h.url, resp.Status)
	}
}

// parseContentRange reads "bytes first-last/total" or "bytes */total". A total of
// "*" (unknown) comes back as -1.
func parseContentRange(v string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		n, err := strconv.ParseInt(tot, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false
		}
		total = n
	}
	if rng == "*" {
		return -1, total, total >= 0
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	return start, total, true
}
