package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/pmo-dev/pmo/config"
)

// The commands that run migrations and overrides go through the HTTP API, as a
// person's calls do: with their API key (PMO_API_KEY), their role, the API's checks
// and its audit trail.

// apiClient calls PMO's HTTP API with a key.
type apiClient struct {
	base *url.URL
	key  string
	http *http.Client
}

// apiFlag adds -api, the API's base URL, to a command's flags.
func apiFlag(fs *flag.FlagSet) *string {
	return fs.String("api", "", "the PMO API's base URL (default http://PMO_HTTP_ADDR); the key is PMO_API_KEY")
}

// newAPIClient checks the API's address and the key.
func newAPIClient(cfg *config.Config, api string) (*apiClient, error) {
	if api == "" {
		api = "http://" + cfg.HTTPAddr
	}
	base, err := url.Parse(api)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, usagef("-api must be an http(s) URL such as http://127.0.0.1:8080, got %q", api)
	}
	key := os.Getenv("PMO_API_KEY")
	if key == "" {
		return nil, usagef("set PMO_API_KEY to an API key (starter apikey create -role operator; make run keeps one in .data/admin.key)")
	}
	return &apiClient{base: base, key: key, http: &http.Client{Timeout: time.Minute}}, nil
}

// apiError is an answer that is not 2xx: its status and the problem's words.
type apiError struct {
	Status int
	Detail string
}

func (e *apiError) Error() string { return e.Detail }

// call sends body (nil for none) as JSON and decodes a 2xx answer into out (nil to
// drop it); it returns the status. Any other answer is an *apiError naming the call,
// the status and the problem's detail.
func (c *apiClient) call(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base.JoinPath(strings.SplitN(path, "?", 2)[0])
	if _, q, ok := strings.Cut(path, "?"); ok {
		u.RawQuery = q
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var p struct {
			Detail string `json:"detail"`
			Title  string `json:"title"`
		}
		_ = json.Unmarshal(data, &p)
		detail := p.Detail
		if detail == "" {
			detail = strings.TrimSpace(p.Title + " " + string(data))
		}
		return resp.StatusCode, &apiError{Status: resp.StatusCode, Detail: fmt.Sprintf("%s %s: %d %s", method, path, resp.StatusCode, detail)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: the answer is not what was expected: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// usageError is a command used wrongly: bad flags or arguments. starter exits 2 for it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// parseAfter parses the flags that follow a command's positional argument (Go's flag
// package stops at the first one) and returns the first argument left after them.
func parseAfter(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", &usageError{err.Error()}
	}
	return fs.Arg(0), nil
}

// usagef makes a usageError.
func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitCode is the status starter exits with for err: 0 for none, 2 for a usage
// error (flags, arguments, help), 1 for anything else.
func exitCode(err error) int {
	var u *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp), errors.As(err, &u):
		return 2
	default:
		return 1
	}
}
