package imports

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzRead reads fuzzed files of every kind in both formats: no panic, and a file is
// either read, refused with Errors whose every row names a line and a column, or
// refused with an error value.
func FuzzRead(f *testing.F) {
	for _, name := range []string{"sites.csv", "slas.json", "history.csv", "history-malformed.csv", "malformed.csv", "rvtools-vinfo.csv"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), data)
	}
	f.Add(uint8(5), []byte(`[{"id":"vm-1","name":"a","site":"dc-east","cpu_cores":2,"ram_bytes":1e999,"storage_bytes":1,"sla_tier":{"x":1}}]`))
	f.Add(uint8(7), []byte(`[{"id":"m","started_at":"0000-01-01T00:00:00Z"},]`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		kind := Kinds[int(which)%len(Kinds)]
		format := CSV
		if which/uint8(len(Kinds))%2 == 1 {
			format = JSON
		}
		file, err := Read(bytes.NewReader(data), kind, format, Defaults{Site: "dc-east", SLATier: "gold"})
		var rows Errors
		switch {
		case errors.As(err, &rows):
			if len(rows) == 0 {
				t.Fatal("Errors with no row")
			}
			for _, r := range rows {
				if r.Line < 1 || r.Column == "" || r.Reason == "" {
					t.Fatalf("row error without a line, column or reason: %+v", r)
				}
			}
		case err != nil:
			if err.Error() == "" {
				t.Fatal("an error that says nothing")
			}
		default:
			if file.Len() != len(file.Sites)+len(file.Tiers)+len(file.VMs)+len(file.History) {
				t.Fatalf("%d lines for %d rows", file.Len(), len(file.Sites)+len(file.Tiers)+len(file.VMs)+len(file.History))
			}
			for _, l := range file.Lines {
				if l < 1 {
					t.Fatalf("row on line %d", l)
				}
			}
		}
	})
}

// FuzzReadAlertmanager reads fuzzed webhook bodies: no panic; what it returns as
// events are valid anomaly events, and an error is a value.
func FuzzReadAlertmanager(f *testing.F) {
	for _, name := range []string{"alertmanager-firing.json", "alertmanager-resolved.json"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "")
	}
	f.Add([]byte(`{"version":"4","alerts":[{"status":"resolved","labels":{"site":"x"},"fingerprint":"f","startsAt":"0001-01-01T00:00:01Z","endsAt":"9999-12-31T23:59:59Z"}]}`), "site")
	f.Fuzz(func(t *testing.T, data []byte, siteLabel string) {
		events, skipped, err := ReadAlertmanager(bytes.NewReader(data), siteLabel)
		if err != nil {
			if events != nil || skipped != nil {
				t.Fatal("events beside an error")
			}
			return
		}
		for _, e := range events {
			if err := e.Validate(""); err != nil {
				t.Fatalf("invalid event %+v: %v", e, err)
			}
			if !strings.HasPrefix(e.Key, "alertmanager/") {
				t.Fatalf("key %q", e.Key)
			}
		}
	})
}
