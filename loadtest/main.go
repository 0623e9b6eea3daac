// Command loadtest drives migrations through PMO's HTTP API and reports what the system
// did with them: it submits -n migrations of the inventory's smallest disks with POST
// /migrations at -rate requests a second (open loop: a slow answer does not slow the
// next request), waits until every one has ended, checks each outcome and, with
// -data, that each destination holds its source's bytes. It prints the throughput,
// the API's latency (p50, p99, max) and every error, and exits 1 if there was any.
//
//	go run ./loadtest -url http://127.0.0.1:8080 -key "$PMO_API_KEY" -n 200 -rate 20
//
// `make load` starts a private system and runs it (docs/load.md).
//
// `loadtest pools` instead shards PMO into many pools, each a fleet with its own
// connectors and planned work, runs them under load and judges every fleet's history
// against Temporal's limits and the planning tick's target (see pools.go; `make
// bench-pools` runs it on the Temporal server with PostgreSQL, docs/scaling.md).
//
// `loadtest wave` plans the inventory's VMs as one wave, submits it with one call and
// follows it to its end, then reads the histories of the wave, its batches, its
// migrations and the fleet (see wave.go; `make bench-wave`, docs/scaling.md).
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
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/transfer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	url, key, data, prefix string
	n                      int
	rate                   float64
	poll, timeout          time.Duration
	p99Target              time.Duration
}

func parse(args []string, cfg config.Config) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "http://"+cfg.HTTPAddr, "the web server's base URL")
	fs.StringVar(&o.key, "key", os.Getenv("PMO_API_KEY"), "an operator API key (default $PMO_API_KEY)")
	fs.StringVar(&o.data, "data", "", "the system's PMO_DATA_DIR, to check each destination's SHA-256 against its source's; empty skips the check")
	fs.StringVar(&o.prefix, "prefix", fmt.Sprintf("load-%d-", time.Now().Unix()), "the migration IDs' prefix")
	fs.IntVar(&o.n, "n", 200, "how many migrations to submit, each of a different VM")
	fs.Float64Var(&o.rate, "rate", 20, "POST /migrations requests a second")
	fs.DurationVar(&o.poll, "poll", 2*time.Second, "how often to list the migrations while waiting")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "how long to wait for every migration to end")
	fs.DurationVar(&o.p99Target, "p99", 100*time.Millisecond, "the POST /migrations p99 to report against")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	switch {
	case fs.NArg() > 0:
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.key == "":
		return options{}, errors.New("-key or PMO_API_KEY: an operator API key is needed")
	case o.n < 1:
		return options{}, fmt.Errorf("-n must be at least 1, got %d", o.n)
	case !(o.rate > 0):
		return options{}, fmt.Errorf("-rate must be positive, got %g", o.rate)
	case o.poll <= 0 || o.timeout <= 0:
		return options{}, errors.New("-poll and -timeout must be positive")
	}
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) (bool, error) {
	if len(args) > 0 && args[0] == "pools" {
		return runPools(ctx, args[1:], out)
	}
	if len(args) > 0 && args[0] == "wave" {
		return runWave(ctx, args[1:], out)
	}
	cfg, err := config.Load()
	if err != nil {
		return false, err
	}
	o, err := parse(args, cfg)
	if err != nil {
		return false, err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return false, err
	}
	vms, err := st.SmallestVMs(ctx, o.n)
	st.Close()
	if err != nil {
		return false, err
	}
	if len(vms) < o.n {
		return false, fmt.Errorf("the inventory holds %d VMs, fewer than -n %d", len(vms), o.n)
	}
	l := &load{o: o, client: &http.Client{Timeout: 30 * time.Second}, lat: map[string][]time.Duration{}}
	r := l.run(ctx, vms)
	r.print(out, o)
	return len(r.errors) == 0, nil
}

// load is one run's client and what it measured.
type load struct {
	o      options
	client *http.Client

	mu     sync.Mutex
	lat    map[string][]time.Duration // by call: "POST /migrations", ...
	errors []string
}

// call sends a request and decodes a 2xx JSON answer into v; it records the latency
// under name, and a non-2xx answer or a failure as an error.
func (l *load) call(ctx context.Context, name, method, path string, body, v any) bool {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			panic(err) // our own types
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.o.url+path, rd)
	if err != nil {
		l.fail("%s %s: %v", method, path, err)
		return false
	}
	req.Header.Set("Authorization", "Bearer "+l.o.key)
	req.Header.Set("Content-Type", "application/json")
	began := time.Now()
	resp, err := l.client.Do(req)
	if err != nil {
		l.fail("%s %s: %v", method, path, err)
		return false
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	took := time.Since(began)
	l.mu.Lock()
	l.lat[name] = append(l.lat[name], took)
	l.mu.Unlock()
	switch {
	case err != nil:
		l.fail("%s %s: reading the answer: %v", method, path, err)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		l.fail("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(raw)))
	case v != nil && json.Unmarshal(raw, v) != nil:
		l.fail("%s %s: the answer is not the JSON expected: %.200s", method, path, raw)
	default:
		return true
	}
	return false
}

func (l *load) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errors = append(l.errors, fmt.Sprintf(format, args...))
}

// summary is a migration as GET /migrations lists it.
type summary struct {
	ID     string `json:"id"`
	Status string `json:"workflow_status"`
}

// view is what GET /migrations/{id} says of a migration that this command checks.
type view struct {
	Phase       string `json:"phase"`
	Outcome     string `json:"outcome"`
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"`
	Destination string `json:"destination"`
	Error       string `json:"error"`
}

// result is what a run measured.
type result struct {
	submitted, ended, succeeded int
	bytes                       int64
	submitFor, allDone          time.Duration // from the first POST
	lat                         map[string][]time.Duration
	errors                      []string
	verified                    int
}

// run submits the migrations at the rate, waits for them all to end, and checks each.
func (l *load) run(ctx context.Context, vms []planning.VM) result {
	var r result
	began := time.Now()
	every := time.Duration(float64(time.Second) / l.o.rate)
	var wg sync.WaitGroup
	// accepted[i] is set when request i was answered 2xx: a refused one has nothing
	// to wait for, and counts as an error already.
	accepted := make([]bool, len(vms))
	// Open loop: request i is sent at began + i/rate whatever happened to the others,
	// as independent clients would send them.
	for i, vm := range vms {
		if d := time.Until(began.Add(time.Duration(i) * every)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		r.submitted++
		go func() {
			defer wg.Done()
			accepted[i] = l.call(ctx, "POST /migrations", "POST", "/migrations", map[string]any{"id": l.o.prefix + vm.ID, "vm_id": vm.ID}, nil)
		}()
	}
	wg.Wait()
	r.submitFor = time.Since(began)

	// Wait until the list shows every migration ended.
	want := map[string]bool{}
	for i, vm := range vms[:r.submitted] {
		if accepted[i] {
			want[l.o.prefix+vm.ID] = true
		}
	}
	deadline := time.Now().Add(l.o.timeout)
	for {
		r.ended = l.ended(ctx, want)
		if r.ended == len(want) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(l.o.poll):
		case <-ctx.Done():
		}
	}
	r.allDone = time.Since(began)
	if r.ended < len(want) {
		l.fail("%d of %d migrations had not ended after %s", len(want)-r.ended, len(want), l.o.timeout)
	}

	// Check each one, paced like the submissions.
	for i, vm := range vms[:r.submitted] {
		if !accepted[i] {
			continue
		}
		if i > 0 {
			time.Sleep(every)
		}
		id := l.o.prefix + vm.ID
		var v view
		if !l.call(ctx, "GET /migrations/{id}", "GET", "/migrations/"+url.PathEscape(id), nil, &v) {
			continue
		}
		if v.Outcome != "succeeded" {
			l.fail("migration %s: phase %s, outcome %q %s", id, v.Phase, v.Outcome, v.Error)
			continue
		}
		r.succeeded++
		r.bytes += v.Bytes
		if l.o.data == "" {
			continue
		}
		src, err := transfer.FileSHA256(vm.DiskURI)
		if err != nil {
			l.fail("migration %s: %v", id, err)
			continue
		}
		dst, err := transfer.FileSHA256(filepath.Join(l.o.data, "target", v.Destination))
		switch {
		case err != nil:
			l.fail("migration %s: %v", id, err)
		case src != v.SHA256 || dst != src:
			l.fail("migration %s: source SHA-256 %s, reported %s, destination %s", id, src, v.SHA256, dst)
		default:
			r.verified++
		}
	}
	l.mu.Lock()
	r.lat, r.errors = l.lat, l.errors
	l.mu.Unlock()
	return r
}

// ended lists the pool's migrations and counts those in want that are not running.
func (l *load) ended(ctx context.Context, want map[string]bool) int {
	n, page := 0, ""
	for {
		var list struct {
			Migrations []summary `json:"migrations"`
			NextPage   string    `json:"next_page"`
		}
		path := "/migrations?limit=1000"
		if page != "" {
			path += "&page=" + url.QueryEscape(page)
		}
		if !l.call(ctx, "GET /migrations", "GET", path, nil, &list) {
			return n
		}
		for _, m := range list.Migrations {
			if want[m.ID] && m.Status != "Running" {
				n++
			}
		}
		if list.NextPage == "" {
			return n
		}
		page = list.NextPage
	}
}

// percentile is the p-th percentile (0-100) of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func (r result) print(w io.Writer, o options) {
	fmt.Fprintf(w, "submitted    %d migrations at %g requests/s in %.1f s\n", r.submitted, o.rate, r.submitFor.Seconds())
	fmt.Fprintf(w, "ended        %d, succeeded %d, destinations checked by SHA-256 %d\n", r.ended, r.succeeded, r.verified)
	fmt.Fprintf(w, "all ended    %.1f s after the first request\n", r.allDone.Seconds())
	if secs := r.allDone.Seconds(); secs > 0 {
		fmt.Fprintf(w, "throughput   %.2f migrations/s, %.2f MiB/s (%.1f MiB copied)\n",
			float64(r.succeeded)/secs, float64(r.bytes)/secs/(1<<20), float64(r.bytes)/(1<<20))
	}
	printLatency(w, r.lat, "POST /migrations", "GET /migrations", "GET /migrations/{id}")
	post := slices.Clone(r.lat["POST /migrations"])
	slices.Sort(post)
	verdict := "met"
	if percentile(post, 99) > o.p99Target {
		verdict = "MISSED"
	}
	fmt.Fprintf(w, "target       POST /migrations p99 at most %s: %s\n", ms(o.p99Target), verdict)
	printErrors(w, r.errors)
}

// ms prints a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// printLatency prints the calls' count and latency percentiles, for each name in lat
// that was called.
func printLatency(w io.Writer, lat map[string][]time.Duration, names ...string) {
	fmt.Fprintf(w, "%-30s %6s %10s %10s %10s %10s\n", "latency", "calls", "p50", "p90", "p99", "max")
	for _, name := range names {
		d := slices.Clone(lat[name])
		slices.Sort(d)
		if len(d) > 0 {
			fmt.Fprintf(w, "%-30s %6d %10s %10s %10s %10s\n", name, len(d), ms(percentile(d, 50)), ms(percentile(d, 90)), ms(percentile(d, 99)), ms(d[len(d)-1]))
		}
	}
}

// printErrors prints how many calls failed and the first 20 failures.
func printErrors(w io.Writer, errs []string) {
	fmt.Fprintf(w, "errors       %d\n", len(errs))
	for i, e := range errs {
		if i == 20 {
			fmt.Fprintf(w, "  … and %d more\n", len(errs)-i)
			break
		}
		fmt.Fprintf(w, "  %s\n", e)
	}
}
