// Package demo builds PMO's demo data set: three sites, three SLA tiers, an inventory of
// VMs whose disks are real (scaled-down) image files, four weeks of migration history
// and one maintenance window. Generate works in memory from its parameters and a weekly
// shape, with no SQL and no Temporal; store.Seed writes the result and WriteDisks writes
// the disk images. docs/demo.md describes it for operators.
//
// The model:
//
//   - Sites ams1 (Amsterdam), fra1 (Frankfurt) and lon1 (London) hold 40%, 35% and 25%
//     of the VMs and see a mean of 3, 2.5 and 1.5 migrations an hour.
//   - Each VM draws a tier (gold 15%, silver 45%, bronze 40%), 2 to 32 cores with 2, 4
//     or 8 GiB of RAM each, and a storage size from a lognormal distribution with median
//     64 GiB and σ 0.8, rounded to whole GiB and clipped to [8 GiB, 2 TiB]. Network and
//     disk change rates are lognormal too (medians 2 MB/s and 150 kB/s, σ 1).
//   - Its disk image is StorageBytes / DemoScale bytes.
//   - History covers the HistoryDays×24 whole hours before Now. In each hour t, each site
//     sees Poisson(base rate × shape[HourOfWeek(t)]) arrivals at uniform seconds within
//     the hour, each for a VM drawn uniformly from the site's inventory, on one of the
//     site's four historical connectors. Migrations still running at Now are left out,
//     as the history holds finished migrations only.
//   - A site's four historical connectors are small, medium, medium and large
//     (planning.Sizes). A migration moves the VM's disk image at a rate drawn from a
//     lognormal whose median is its connector's per-task share (512 KiB/s, 1 MiB/s,
//     2 MiB/s) and σ 0.5, clipped to [256 KiB/s, 16 MiB/s]. 95% succeed, with a cutover downtime of 5–60%
//     of the tier's maximum; 3% breach the SLA by waiting for a connector past the tier's
//     maximum transfer time; 2% fail part-way and, as live failures are, are recorded
//     with no bytes and no rate.
//   - fra1 has a four-hour maintenance window from 22:00 UTC on the day after Now.
//
// History is in the demo's units, like the rows live migrations add: bytes are image
// bytes and rates are connector rates. The planner divides mean history bytes by
// connector bandwidth, so real-sized history would have it ask for dozens of connectors
// per site and flag every SLA.
package demo

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/sources"
)

// DemoScale is how many bytes of a VM's real storage one byte of its demo disk image
// stands for: a 64 GiB VM has a 1 MiB image. The connectors move real bytes at 1–16 MiB/s
// (planning.Sizes), so a demo migration takes seconds instead of hours, and 600 images
// take under a gigabyte of disk. vms.storage_bytes keeps the real size;
// vms.disk_bytes is the image's.
const DemoScale = 65536

// HistoryDays is how many days of migration history Generate writes, ending at Now.
// It matches the four weeks that the fleet's forecast reads.
const HistoryDays = 28

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30
	tib = int64(1) << 40
)

// site is one demo site and its share of the load.
type site struct {
	row     planning.SiteInfo
	vmShare float64 // fraction of the inventory
	perHour float64 // base rate: mean migrations an hour over a week
}

// sites are the demo's sites in ID order. Uplinks are 10 Gbit/s at ams1 and fra1 and
// 5 Gbit/s at lon1.
var sites = []site{
	{planning.SiteInfo{ID: "ams1", Name: "Amsterdam", Region: "eu-west", UplinkBytesSec: 1.25e9}, 0.40, 3},
	{planning.SiteInfo{ID: "fra1", Name: "Frankfurt", Region: "eu-central", UplinkBytesSec: 1.25e9}, 0.35, 2.5},
	{planning.SiteInfo{ID: "lon1", Name: "London", Region: "eu-west", UplinkBytesSec: 6.25e8}, 0.25, 1.5},
}

// tiers are the SLA tiers and the share of VMs in each.
var tiers = []struct {
	tier  planning.SLATier
	share float64
}{
	{planning.SLATier{Name: "gold", MaxTransfer: 120 * time.Second, MaxDowntime: 10 * time.Second, PlanQuantile: 0.9}, 0.15},
	{planning.SLATier{Name: "silver", MaxTransfer: 600 * time.Second, MaxDowntime: 60 * time.Second, PlanQuantile: 0.75}, 0.45},
	{planning.SLATier{Name: "bronze", MaxTransfer: 1800 * time.Second, MaxDowntime: 300 * time.Second, PlanQuantile: 0.5}, 0.40},
}

var (
	cores      = []int{2, 4, 8, 16, 32}
	coreShares = []float64{0.25, 0.35, 0.25, 0.10, 0.05}
	ramPerCore = []int64{2 * gib, 4 * gib, 8 * gib}
	ramShares  = []float64{0.3, 0.5, 0.2}
	roles      = []string{"web", "app", "db", "cache", "batch", "file"}
	roleShares = []float64{0.3, 0.25, 0.15, 0.1, 0.1, 0.1}
)

// historyConnectorSizes are the sizes of each site's historical connectors, hist-<site>-c1
// to -c4: the history spreads over them evenly.
var historyConnectorSizes = []string{"small", "medium", "medium", "large"}

// Params are the inputs of Generate.
type Params struct {
	// Now ends the history; Generate truncates it to the hour, in UTC.
	Now time.Time
	// Seed picks the data set: the same Seed and Now give the same rows and images.
	Seed uint64
	// VMs is the size of the inventory, at least 1.
	VMs int
	// DisksDir is the absolute path of the folder the disk images are in.
	DisksDir string
	// Pool is the connector pool of the sites; empty means planning.DefaultPool.
	Pool string
}

// Generate builds the data set for p with arrivals shaped by shape (see ReadShape). It
// returns an error only for bad parameters.
func Generate(p Params, shape Shape) (planning.SeedData, error) {
	if p.VMs < 1 {
		return planning.SeedData{}, fmt.Errorf("demo: need at least 1 VM, got %d", p.VMs)
	}
	if !filepath.IsAbs(p.DisksDir) {
		return planning.SeedData{}, fmt.Errorf("demo: the disks folder must be an absolute path, got %q", p.DisksDir)
	}
	now := p.Now.UTC().Truncate(time.Hour)
	rng := newRand(p.Seed)
	var d planning.SeedData
	pool := cmp.Or(p.Pool, planning.DefaultPool)
	// Every site's disks are read from the disks folder alone.
	disks, err := sources.Entry(p.DisksDir)
	if err != nil {
		return planning.SeedData{}, fmt.Errorf("demo: the disks folder: %w", err)
	}
	for _, s := range sites {
		row := s.row
		row.Pool = pool
		row.Sources = []string{disks}
		d.Sites = append(d.Sites, row)
	}
	for _, t := range tiers {
		d.Tiers = append(d.Tiers, t.tier)
	}
	d.VMs = inventory(rng, p.VMs)
	for i, v := range d.VMs {
		d.VMs[i].DiskURI = filepath.Join(p.DisksDir, v.ID+".img")
		d.VMs[i].Pool = pool
	}
	d.History = history(rng, now, d.VMs, shape)
	d.Events = []planning.KeyedEvent{maintenance(now)}
	return d, nil
}

// newRand is the random source of a data set: Generate draws the inventory and then the
// history from it, so Inventory with the same seed gives the same VMs.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x706d6f2d64656d6f)) // "pmo-demo"
}

// Inventory draws n VMs as Generate does for the same seed and n (see the package
// comment), for other generators of demo load such as the simulator's traces. They have
// no disk images: DiskURI is empty, and DiskBytes is still StorageBytes / DemoScale. Their
// pool is the default one.
func Inventory(seed uint64, n int) []planning.InventoryVM {
	return inventory(newRand(seed), n)
}

// inventory draws n VMs. VM i of n goes to the site whose cumulative share first
// exceeds (i+½)/n, so each site gets its share to within one VM, whatever n is.
func inventory(rng *rand.Rand, n int) []planning.InventoryVM {
	shares := make([]float64, len(tiers))
	for i, t := range tiers {
		shares[i] = t.share
	}
	vms := make([]planning.InventoryVM, 0, max(n, 0))
	for i := range n {
		s := sites[len(sites)-1].row
		cum := 0.0
		for _, x := range sites {
			cum += x.vmShare
			if (float64(i)+0.5)/float64(n) < cum {
				s = x.row
				break
			}
		}
		tier := tiers[pick(rng, shares)].tier
		c := cores[pick(rng, coreShares)]
		storage := int64(math.Round(lognormal(rng, float64(64*gib), 0.8)/float64(gib))) * gib
		storage = min(max(storage, 8*gib), 2*tib)
		id := fmt.Sprintf("vm-%04d", i+1)
		vms = append(vms, planning.InventoryVM{
			VM: planning.VM{
				ID: id, Name: fmt.Sprintf("%s-%s-%04d", s.ID, roles[pick(rng, roleShares)], i+1),
				Site: s.ID, Pool: planning.DefaultPool, SLATier: tier.Name,
				DiskBytes:   storage / DemoScale,
				MaxTransfer: tier.MaxTransfer, MaxDowntime: tier.MaxDowntime,
			},
			CPUCores:           c,
			RAMBytes:           int64(c) * ramPerCore[pick(rng, ramShares)],
			StorageBytes:       storage,
			NetworkBytesSec:    math.Round(lognormal(rng, 2e6, 1)),
			DiskChangeBytesSec: math.Round(lognormal(rng, 1.5e5, 1)),
		})
	}
	return vms
}

// history draws the migrations of the HistoryDays before now; see the package comment.
func history(rng *rand.Rand, now time.Time, vms []planning.InventoryVM, shape Shape) []planning.MigrationRecord {
	bySite := make([][]int, len(sites))
	for i, v := range vms {
		for si, s := range sites {
			if v.Site == s.row.ID {
				bySite[si] = append(bySite[si], i)
			}
		}
	}
	tierOf := make(map[string]planning.SLATier, len(tiers))
	for _, t := range tiers {
		tierOf[t.tier.Name] = t.tier
	}
	start := now.Add(-HistoryDays * 24 * time.Hour)
	count := make([]int, len(sites))
	var out []planning.MigrationRecord
	for h := range HistoryDays * 24 {
		hour := start.Add(time.Duration(h) * time.Hour)
		for si, s := range sites {
			if len(bySite[si]) == 0 {
				continue // fewer VMs than sites: this site has none to migrate
			}
			offsets := make([]int, Poisson(rng, s.perHour*shape[HourOfWeek(hour)]))
			for i := range offsets {
				offsets[i] = rng.IntN(3600)
			}
			slices.Sort(offsets) // IDs go up with start time
			for _, off := range offsets {
				vm := vms[bySite[si][rng.IntN(len(bySite[si]))]]
				m := migration(rng, vm, tierOf[vm.SLATier], hour.Add(time.Duration(off)*time.Second))
				if m.EndedAt.After(now) {
					continue // still running at now: history has only finished migrations
				}
				count[si]++
				m.ID = fmt.Sprintf("hist-%s-%05d", s.row.ID, count[si])
				out = append(out, m)
			}
		}
	}
	return out
}

// migration draws the course of one historical migration that started at started.
// The caller gives it its ID.
func migration(rng *rand.Rand, vm planning.InventoryVM, tier planning.SLATier, started time.Time) planning.MigrationRecord {
	c := rng.IntN(len(historyConnectorSizes))
	connector := fmt.Sprintf("hist-%s-c%d", vm.Site, 1+c)
	size, _ := planning.SizeNamed(historyConnectorSizes[c])
	share := size.BandwidthBytesSec / float64(size.MaxTasks)
	rate := min(max(lognormal(rng, share, 0.5), float64(256*kib)), float64(16*mib))
	copying := seconds(float64(vm.DiskBytes) / rate)
	m := planning.MigrationRecord{
		VMID: vm.ID, Site: vm.Site, ConnectorID: connector, SLATier: tier.Name,
		Bytes: vm.DiskBytes, StartedAt: started, Outcome: "succeeded",
		ConnectorBandwidthBytesSec: size.BandwidthBytesSec,
	}
	elapsed := copying
	// Cutover stops the VM for the final sync of what changed during the copy.
	downtime := math.Round(tier.MaxDowntime.Seconds()*(0.05+0.55*rng.Float64())*10) / 10
	switch u := rng.Float64(); {
	case u < 0.02:
		elapsed = seconds(copying.Seconds() * rng.Float64())
		m.Outcome, m.Bytes, downtime = "failed", 0, 0
		m.Detail = fmt.Sprintf("transfer on connector %s: connector process exited", connector)
	case u < 0.05:
		wait := seconds(tier.MaxTransfer.Seconds() * (1 + 0.5*rng.Float64()))
		elapsed = wait + copying
		m.Outcome = "sla_breached"
		m.Detail = fmt.Sprintf("waited %s for a connector; the %s tier allows %s in all",
			wait.Round(time.Second), tier.Name, tier.MaxTransfer)
	}
	elapsed = max(elapsed, time.Millisecond)
	m.EndedAt = started.Add(elapsed)
	if m.Bytes > 0 {
		m.AvgBytesSec = float64(m.Bytes) / elapsed.Seconds()
	}
	m.DowntimeSeconds = downtime
	return m
}

// maintenance is the demo's one system event: fra1's network maintenance from 22:00
// UTC on the day after now, for four hours, inside the fleet's 48-hour horizon.
func maintenance(now time.Time) planning.KeyedEvent {
	starts := now.Truncate(24 * time.Hour).Add(24*time.Hour + 22*time.Hour)
	return planning.KeyedEvent{
		Key: "demo-maintenance-fra1-" + starts.Format("20060102T15Z"),
		Event: planning.Event{
			Site: "fra1", Kind: "maintenance", Severity: "warning", Starts: starts, Ends: starts.Add(4 * time.Hour),
			Detail: "core switch upgrade: the uplink may drop for minutes at a time",
		},
	}
}

// seconds converts seconds to a Duration, to the millisecond.
func seconds(s float64) time.Duration {
	return time.Duration(math.Round(s*1000)) * time.Millisecond
}

// pick returns index i with probability weights[i]; the weights sum to 1.
func pick(rng *rand.Rand, weights []float64) int {
	u := rng.Float64()
	for i, w := range weights {
		if u < w {
			return i
		}
		u -= w
	}
	return len(weights) - 1
}

// lognormal draws median·e^(σZ), Z standard normal.
func lognormal(rng *rand.Rand, median, sigma float64) float64 {
	return median * math.Exp(sigma*rng.NormFloat64())
}

// Poisson draws a Poisson count with mean lambda by Knuth's method: count uniform draws
// until their product falls below e^-λ. It goes in steps of λ ≤ 10, because a sum of
// Poisson counts is a Poisson count and e^-λ underflows for large λ.
func Poisson(rng *rand.Rand, lambda float64) int {
	n := 0
	for lambda > 0 {
		step := min(lambda, 10)
		lambda -= step
		limit, p := math.Exp(-step), rng.Float64()
		for p > limit {
			n++
			p *= rng.Float64()
		}
	}
	return n
}
