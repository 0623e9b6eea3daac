package planning

import (
	"fmt"
	"maps"
	"slices"
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
	// An idle connector whose CPU limit held it back a third of the time: it moves
	// what its CPU allows, though its bandwidth is all free.
	cpuBound := busy("c1", 0, ms(1))
	cpuBound.Usage.CPUThrottledPercent = 33
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
		{"a CPU-bound connector has no free bandwidth", []Connector{cpuBound, busy("c2", 3, ms(1))}, "c2"},
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
	got, _ = Assign([]Connector{cpuBound}, []Reservation{{MigrationID: "m", Site: "ams1"}}, nil)
	if got[0].Reason != "c1: 0.0 KiB/s free of 4.0 MiB/s, 0 of 4 tasks, reads in 1ms, CPU-bound (held back 33% of the time)" {
		t.Fatalf("the only connector takes the work, and the reason says it is CPU-bound: %q", got[0].Reason)
	}
}

// A connector is CPU-bound when its CPU limit held it back, bandwidth-bound when it
// moved nine tenths of its bandwidth, and neither otherwise; CPU comes first, since a
// throttled connector that still fills its link would fill it no faster with more.
func TestConnectorBoundTellsCPUFromBandwidth(t *testing.T) {
	for _, c := range []struct {
		throttled, used float64
		want            string
	}{
		{0, 0, ""},
		{CPUBoundPercent - 1, float64(mib), ""},
		{CPUBoundPercent, float64(mib), BoundCPU},
		{0, 3.6 * float64(mib), BoundBandwidth},
		{0, 3.5 * float64(mib), ""},
		{50, 4 * float64(mib), BoundCPU},
	} {
		k := conn("c1", "ams1", StateActive, 1) // medium: 4 MiB/s
		k.Usage.CPUThrottledPercent, k.Usage.BandwidthUsedBytesSec = c.throttled, c.used
		if got := k.Bound(); got != c.want {
			t.Errorf("throttled %v%%, moving %.1f MiB/s: bound %q, want %q", c.throttled, c.used/float64(mib), got, c.want)
		}
	}
}

// Assign takes every free slot at a site and no more, never gives a migration a
// connector it avoids, and leaves the work of a site with no free slot waiting.
func TestAssignFillsEachSitesFreeSlotsAndNoMore(t *testing.T) {
	conns := []Connector{
		conn("a1", "ams1", StateActive, 3), // one slot free
		conn("a2", "ams1", StateActive, 2), // two free
		conn("f1", "fra1", StateActive, 4), // full
	}
	var waiting []Reservation
	for i := range 5 {
		waiting = append(waiting, Reservation{MigrationID: fmt.Sprintf("ams-%d", i), Site: "ams1", Deadline: t0.Add(time.Duration(i) * time.Minute)})
	}
	waiting[0].Avoid = []string{"a2", "a1"} // failed on both: it waits
	waiting[1].Avoid = []string{"a2"}
	waiting = append(waiting, Reservation{MigrationID: "fra-0", Site: "fra1", Deadline: t0})
	got, after := Assign(conns, waiting, nil)
	placed := map[string]string{}
	for _, a := range got {
		placed[a.MigrationID] = a.ConnectorID
	}
	if want := map[string]string{"ams-1": "a1", "ams-2": "a2", "ams-3": "a2"}; !maps.Equal(placed, want) {
		t.Fatalf("placed %v, want %v", placed, want)
	}
	for _, c := range after {
		if len(c.Migrations) != c.Size.MaxTasks {
			t.Errorf("%s runs %d of %d tasks, want every slot taken", c.ID, len(c.Migrations), c.Size.MaxTasks)
		}
	}
}

// A site whose live connectors of PMO's are all unreachable is cut off, and the plan
// shows it as an "unreachable" bottleneck; one reachable connector, or none live, is
// not; external connectors do not count.
func TestAPlanShowsASiteWhoseConnectorsAreAllUnreachable(t *testing.T) {
	cut := func(c Connector) Connector { c.Unreachable = true; return c }
	ext := conn("x1", "lon1", StateWarm, 0)
	ext.External = true
	conns := []Connector{
		cut(conn("a1", "ams1", StateWarm, 0)), cut(conn("a2", "ams1", StateActive, 1)),
		cut(conn("f1", "fra1", StateWarm, 0)), conn("f2", "fra1", StateWarm, 0),
		cut(conn("l1", "lon1", StateStopped, 0)), ext,
		cut(conn("p1", "par1", StateWarming, 0)),
	}
	if got := UnreachableSites(conns); !slices.Equal(got, []string{"ams1", "par1"}) {
		t.Fatalf("unreachable sites %v, want [ams1 par1]", got)
	}
	w := World{Now: t0, Size: Sizes[1], LeadTime: 5 * time.Minute, Tick: 30 * time.Second, Sites: []Site{{ID: "ams1", StrictestQuantile: 0.9}},
		Fleet: &Fleet{Connectors: conns}}
	var kinds []string
	for _, b := range Tick(w).Plan.Bottlenecks {
		if b.Kind == "unreachable" {
			kinds = append(kinds, b.Site+": "+b.Detail)
		}
	}
	if len(kinds) != 2 || !strings.HasPrefix(kinds[0], "ams1: no connector at ams1 has reported for over 30s") {
		t.Fatalf("unreachable bottlenecks %q", kinds)
	}
}
