package trace

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzRead reads fuzzed trace files: no panic, and every request read is one that
// Read's checks allow (known before it arrives, due after it arrives, positive bytes).
func FuzzRead(f *testing.F) {
	f.Add([]byte(strings.Join(header, ",") + "\nm1,2026-10-26T00:00:00Z,2026-10-26T00:00:00Z,vm-1,ams1,gold,100,2026-10-26T04:00:00Z,\n"))
	f.Add([]byte(strings.Join(header, ",") + "\nm1,2026-10-26T00:00:00Z,2026-10-27T00:00:00Z,vm-1,ams1,gold,-1,x,w\nm1\n"))
	f.Add([]byte("\ufeffid,arrival\n\"a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		reqs, err := Read(bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "trace: ") {
				t.Fatalf("error without the package's prefix: %v", err)
			}
			return
		}
		for _, r := range reqs {
			if r.Bytes <= 0 || r.KnownAt.After(r.Arrival) || r.Deadline.Before(r.Arrival) {
				t.Fatalf("bad request read: %+v", r)
			}
		}
	})
}

// FuzzReadSeries reads a fuzzed gen-trace shape and generates a one-day trace from
// it, as starter gen-trace does: no panic, no endless draw; errors are values.
func FuzzReadSeries(f *testing.F) {
	f.Add([]byte("timestamp,cpu\n2019-01-01T00:00:00Z,1.5\n2019-01-01T00:05:00Z,2\n"), "")
	f.Add([]byte("a,b\n1,x\n"), "b")
	f.Add([]byte("v\n5e-324\n0\n"), "")
	f.Add([]byte("v\n1e308\n1e308\n"), "v")
	f.Fuzz(func(t *testing.T, data []byte, column string) {
		_, series, err := ReadSeries(bytes.NewReader(data), column)
		if err != nil {
			return
		}
		if len(series) == 0 {
			t.Fatal("no values and no error")
		}
		p := DefaultParams()
		p.Days, p.VMs, p.Step = 1, 20, time.Hour
		reqs, err := Generate(series, p)
		if err != nil {
			return
		}
		for _, r := range reqs {
			if r.Bytes <= 0 || r.KnownAt.After(r.Arrival) || r.Deadline.Before(r.Arrival) {
				t.Fatalf("bad request generated: %+v", r)
			}
		}
	})
}
