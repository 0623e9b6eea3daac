package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/config"
)

func TestPercentileIsTheNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 200; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 100 * time.Millisecond, 99: 198 * time.Millisecond, 100: 200 * time.Millisecond, 0: time.Millisecond} {
		if got := percentile(d, p); got != want {
			t.Errorf("p%g of 1..200 ms: got %s, want %s", p, got, want)
		}
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one: got %s", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of none: got %s", got)
	}
}

func TestBadFlagsAreRefusedNamingTheFlag(t *testing.T) {
	cfg := config.Config{HTTPAddr: "127.0.0.1:8080"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-key", "k", "-n", "0"}, "-n must be at least 1"},
		{[]string{"-key", "k", "-rate", "-1"}, "-rate must be positive"},
		{[]string{"-key", ""}, "-key or PMO_API_KEY"},
		{[]string{"-key", "k", "extra"}, "unexpected arguments"},
	} {
		t.Setenv("PMO_API_KEY", "")
		if _, err := parse(c.args, cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.args, err, c.want)
		}
	}
	o, err := parse([]string{"-key", "k"}, cfg)
	if err != nil || o.n != 200 || o.rate != 20 || o.url != "http://127.0.0.1:8080" || o.p99Target != 100*time.Millisecond {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}

func TestPoolsFlagsAreRefusedNamingTheFlag(t *testing.T) {
	cfg := config.Config{HTTPAddr: "127.0.0.1:8080"}
	t.Setenv("PMO_API_KEY", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-key", "k", "-pools", "0"}, "-pools and -sites must be at least 1"},
		{[]string{"-key", "k", "-planned", "-1"}, "-connectors and -planned at least 0"},
		{[]string{"-key", ""}, "-key or PMO_API_KEY"},
		{[]string{"-key", "k", "extra"}, "unexpected arguments"},
	} {
		_, err := parsePools(c.args, cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error with %q", c.args, err, c.want)
		}
	}
	o, err := parsePools([]string{"-key", "k"}, cfg)
	if err != nil || o.pools != 20 || o.conns != 100 || o.planned != 1000 || o.url != "http://127.0.0.1:8080" {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}

func TestWaveFlagsAreRefusedNamingTheFlag(t *testing.T) {
	cfg := config.Config{HTTPAddr: "127.0.0.1:8080", Pool: "default"}
	t.Setenv("PMO_API_KEY", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-key", "k", "-vms", "0"}, "-vms must be at least 1"},
		{[]string{"-key", "k", "-worker-pids", "12,x"}, `-worker-pids: "x" is not a process ID`},
		{[]string{"-key", ""}, "-key or PMO_API_KEY"},
		{[]string{"-key", "k", "extra"}, "unexpected arguments"},
	} {
		_, err := parseWave(c.args, cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error with %q", c.args, err, c.want)
		}
	}
	o, err := parseWave([]string{"-key", "k", "-worker-pids", "12,34"}, cfg)
	if err != nil || o.vms != 10000 || o.pool != "default" || len(o.workerPIDs) != 2 || o.workerPIDs[1] != 34 {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}

func TestResidentBytesReadsThePeakOfARunningProcess(t *testing.T) {
	b, err := residentBytes(os.Getpid())
	if err != nil || b < 1<<20 {
		t.Errorf("this test's own peak resident memory: %d, %v", b, err)
	}
	if _, err := residentBytes(1 << 30); err == nil {
		t.Error("a process that does not exist has no memory")
	}
}

// A tick fits its pool's forecast the first time its fleet plans on a worker in an
// hour, across the fleet's runs; the others reuse it.
func TestTicksAreSplitIntoThoseThatFitAndThoseThatReuse(t *testing.T) {
	hour := time.Now().UTC().Truncate(time.Hour)
	tick := func(fleet, worker string, at time.Duration, ms int) tickRecord {
		return tickRecord{fleet: fleet, worker: worker, at: hour.Add(at), took: time.Duration(ms) * time.Millisecond}
	}
	runs := []runStats{
		{planned: []tickRecord{tick("fleet-a", "w1", time.Minute, 60), tick("fleet-a", "w1", 30*time.Second, 900)}},
		{planned: []tickRecord{tick("fleet-a", "w2", 2*time.Minute, 800), tick("fleet-a", "w1", 61*time.Minute, 700)}},
		{planned: []tickRecord{tick("fleet-b", "w1", 90*time.Second, 500), tick("fleet-b", "w1", 2*time.Minute, 50)}},
	}
	fitted, reused := splitFits(runs)
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	require.Equal(t, ms(500, 700, 800, 900), fitted, "each fleet's first on each worker in each hour, whichever run holds it")
	require.Equal(t, ms(50, 60), reused)
}
