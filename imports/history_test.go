package imports

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/planning"
)

func TestReadsHistoryWithItsDefaults(t *testing.T) {
	file, err := readFile(t, "history.csv", History, Defaults{})
	require.NoError(t, err)
	require.Equal(t, []int{2, 3, 4, 5}, file.Lines)
	h := file.History
	require.Equal(t, planning.MigrationRecord{
		ID: "m-001", VMID: "vm-101", Site: "dc-east", ConnectorID: "hcx-east-1", SLATier: "gold", Bytes: 100 << 30,
		StartedAt: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), EndedAt: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC),
		AvgBytesSec: 100 << 30 / 3600.0, Outcome: "succeeded", DowntimeSeconds: 42.5,
	}, h[0], "a blank rate is the bytes over the time taken")
	require.Equal(t, ExternalConnector, h[1].ConnectorID, "a blank connector is one PMO did not run")
	require.Equal(t, 50e6, h[1].AvgBytesSec, "a rate given is kept")
	require.True(t, h[1].StartedAt.Equal(time.Date(2026, 11, 2, 8, 30, 0, 0, time.UTC)), "the offset counts")
	require.Zero(t, h[2].AvgBytesSec, "no bytes, no rate")
	require.Zero(t, h[2].DowntimeSeconds)
	require.False(t, h[2].Planned)
	require.True(t, h[3].Planned)
}

func TestListsEveryBadHistoryRow(t *testing.T) {
	_, err := readFile(t, "history-malformed.csv", History, Defaults{})
	require.Equal(t, []string{
		`line 2: ended_at: 2026-11-02T09:00:00Z is before started_at 2026-11-02T10:00:00Z`,
		`line 3: bytes: "lots" is not a whole number`,
		`line 3: started_at: "2026-11-02 10:00" is not an RFC 3339 time such as 2026-11-24T10:00:00Z`,
		`line 3: outcome: "finished" is not an outcome: want succeeded, failed, sla_breached, cancelled`,
		`line 4: planned: "maybe" is not true or false`,
		`line 5: vm_id: is missing`,
		`line 5: sla_tier: is missing`,
		`line 5: bytes: -1 is negative`,
		`line 5: planned: "no" is not true or false`,
	}, lines(t, err))

	in := `[{"id": "m-1", "vm_id": "vm-1", "site": "s1", "sla_tier": "gold", "bytes": 10,
	  "started_at": "2026-11-02T09:00:00Z", "ended_at": "2026-11-02T09:00:10Z", "outcome": "succeeded", "planned": true}]`
	file, err := Read(strings.NewReader(in), History, JSON, Defaults{})
	require.NoError(t, err)
	require.True(t, file.History[0].Planned, "a JSON bool")
	require.Equal(t, 1.0, file.History[0].AvgBytesSec)

	_, err = Read(strings.NewReader("id,vm_id,site,sla_tier,bytes,started_at,outcome\n"), History, CSV, Defaults{})
	require.Equal(t, Errors{{Line: 1, Column: "ended_at", Reason: "no column for it; want a header ended_at"}}, err)
}

func TestHistoryRefsAreCheckedLikeAnInventory(t *testing.T) {
	file, err := readFile(t, "history.csv", History, Defaults{})
	require.NoError(t, err)
	require.Equal(t, []string{
		`line 4: site: "dc-west" is not a known site (known: dc-east)`,
		`line 4: sla_tier: "bronze" is not a known SLA tier (known: gold, platinum)`,
	}, lines(t, file.CheckRefs([]string{"dc-east"}, []string{"gold", "platinum"})))
}

func TestReadsSitesAndSLATiers(t *testing.T) {
	sites, err := readFile(t, "sites.csv", Sites, Defaults{})
	require.NoError(t, err)
	require.Equal(t, []planning.SiteInfo{
		{ID: "dc-east", Name: "East", Region: "eu-west", UplinkBytesSec: 1.25e9, Pool: "europe"},
		{ID: "dc-west", Name: "West", Region: "us-west", UplinkBytesSec: 6.25e8, Pool: "default"},
	}, sites.Sites)
	require.NoError(t, sites.CheckRefs(nil, nil), "a site names nothing")

	tiers, err := readFile(t, "slas.json", SLAs, Defaults{})
	require.NoError(t, err)
	require.Equal(t, []planning.SLATier{
		{Name: "bronze", MaxTransfer: 24 * time.Hour, MaxDowntime: time.Hour, PlanQuantile: 0.5},
		{Name: "gold", MaxTransfer: 4 * time.Hour, MaxDowntime: 10 * time.Minute, PlanQuantile: 0.8},
		{Name: "platinum", MaxTransfer: time.Hour, MaxDowntime: time.Minute, PlanQuantile: 0.95},
	}, tiers.Tiers, "the quantile is 0.5 unless given")
	require.Equal(t, []int{2, 3, 4}, tiers.Lines)

	bad := "name,max_transfer_seconds,max_downtime_seconds,plan_quantile\n" +
		"gold,1h,600,0.9\n" + "silver,600,0,1\n" + "gold,600,60,0\n"
	_, err = Read(strings.NewReader(bad), SLAs, CSV, Defaults{})
	require.Equal(t, []string{
		`line 2: max_transfer_seconds: "1h" is not a whole number`,
		`line 3: max_downtime_seconds: 0 is not positive`,
		`line 3: plan_quantile: 1 is not below 1: it is the quantile of demand that capacity is sized to`,
		`line 4: plan_quantile: 0 is not positive`,
	}, lines(t, err))

	_, err = Read(strings.NewReader("id,name,region,uplink_bytes_per_sec\nams1,Amsterdam,eu,fast\n"), Sites, CSV, Defaults{})
	require.EqualError(t, err, `line 2: uplink_bytes_per_sec: "fast" is not a number`)
	_, err = Read(strings.NewReader(""), "vms", CSV, Defaults{})
	require.EqualError(t, err, `unknown kind of file "vms": want sites, slas, inventory, history`)
}
