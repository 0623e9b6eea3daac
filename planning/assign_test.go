package planning

import (
	"strings"
	"testing"
	"time"
)

func TestAssignPlacesByLatencyAndFreeBandwidth(t *testing.T) {
	ms := func(v float64) float64 { return v / 1000 }
	// busy is a medium connector at ams1 with tasks at a 1 MiB/s share each, that
	// read from the VMs' disks in latency seconds.
	busy := func(id string, tasks int, latency float64) Connector {
		c := conn(id, "ams1", StateWarm, tasks)
		for i := range c.Migrations {
			c.Migrations[i].BandwidthBytesSec = float64(mib)
		}
		c.Usage.ReadLatencySeconds = latency
		return c
	}
	measuredBusy := busy("c1", 0, ms(1))
	measuredBusy.Usage.BandwidthUsedBytesSec = float64(3 * mib) // finishing work not yet released
	cases := []struct {
		name  string
		conns []Connector
		want  string
	}{
		{"equal room: the lower latency", []Connector{busy("c1", 0, ms(10)), busy("c2", 0, ms(6))}, "c2"},
		{"more free bandwidth within twice the best latency", []Connector{busy("c1", 3, ms(2)), busy("c2", 0, ms(3.9))}, "c2"},
		{"a far connector only when no near one has room", []Connector{busy("c1", 0, ms(30)), busy("c2", 3, ms(2))}, "c2"},
		{"unmeasured latency is not far", []Connector{busy("c1", 2, ms(2)), busy("c2", 0, 0)}, "c2"},
		{"measured use counts against free bandwidth", []Connector{measuredBusy, busy("c2", 1, ms(1))}, "c2"},
		{"a tie goes to the lower ID", []Connector{busy("c2", 1, ms(1)), busy("c1", 1, ms(1))}, "c1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := Assign(c.conns, []Reservation{{MigrationID: "m", Site: "ams1", Deadline: t0.Add(time.Hour)}}, nil)
			if len(got) != 1 || got[0].ConnectorID != c.want {
				t.Fatalf("assigned %+v, want %s", got, c.want)
			}
			if !strings.HasPrefix(got[0].Reason, c.want+": ") || !strings.Contains(got[0].Reason, "the best of 2 at ams1") {
				t.Fatalf("reason %q", got[0].Reason)
			}
		})
	}
	got, _ := Assign([]Connector{busy("c1", 1, ms(2))}, []Reservation{{MigrationID: "m", Site: "ams1"}}, nil)
	if got[0].Reason != "c1: 3.0 MiB/s free of 4.0 MiB/s, 1 of 4 tasks, reads in 2ms" {
		t.Fatalf("reason %q", got[0].Reason)
	}
}
