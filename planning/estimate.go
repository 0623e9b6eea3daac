package planning

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// EstimateInput is a batch of known migrations to size, with the ad-hoc demand
// forecast for the same window.
type EstimateInput struct {
	Planned []PlannedMigration
	Demand  []Demand
	Sites   []Site
	Events  []Event
	Tiers   []SLATier
	Size    Size
}

// SiteEstimate is what one site needs to finish its share of the batch in time.
type SiteEstimate struct {
	Site              string  `json:"site"`
	Migrations        int     `json:"migrations"`
	Bytes             int64   `json:"bytes"`
	Connectors        int     `json:"connectors"`
	CPUMillis         int     `json:"cpu_millis"`
	RAMBytes          int64   `json:"ram_bytes"`
	BandwidthBytesSec float64 `json:"bandwidth_bytes_per_sec"`
	StorageBytes      int64   `json:"storage_bytes"`
	ExpectedSeconds   float64 `json:"expected_seconds"`
}

// Estimate is the answer for a batch: per-site needs, bottlenecks and reasons.
type Estimate struct {
	Sites           []SiteEstimate `json:"sites"`
	ExpectedSeconds float64        `json:"expected_seconds"`
	Bottlenecks     []Bottleneck   `json:"bottlenecks"`
	Reasons         []string       `json:"reasons"`
}

// EstimateBatch sizes each site for a batch of known migrations that must all run
// between their earliest start and their deadline, on top of the ad-hoc work forecast
// for that window. With window W, batch bytes B, n migrations and ad-hoc bytes A:
//
//	bandwidth  = (B + A) / W
//	in flight  = n · (B/n / per-task rate) / W
//	connectors = max(⌈bandwidth / size bandwidth⌉, ⌈in flight / max tasks⌉, 1)
//
// and the expected duration is the time those connectors take to move the batch:
// max(B / (connectors · size bandwidth), largest migration / per-task rate).
func EstimateBatch(in EstimateInput) Estimate {
	// Empty lists, not null, for API clients.
	est := Estimate{Sites: []SiteEstimate{}, Bottlenecks: []Bottleneck{}, Reasons: []string{}}
	size := in.Size
	perTask := size.BandwidthBytesSec / float64(size.MaxTasks)
	var sites []string
	for _, p := range in.Planned {
		if !slices.Contains(sites, p.Site) {
			sites = append(sites, p.Site)
		}
	}
	slices.Sort(sites)
	for _, id := range sites {
		var batch []PlannedMigration
		for _, p := range in.Planned {
			if p.Site == id {
				batch = append(batch, p)
			}
		}
		profile := Site{ID: id, StrictestQuantile: 0.5}
		for _, s := range in.Sites {
			if s.ID == id {
				profile = s
			}
		}
		var bytes, largest int64
		start, end := batch[0].EarliestStart, batch[0].Deadline
		for _, p := range batch {
			bytes += p.Bytes
			largest = max(largest, p.Bytes)
			if p.EarliestStart.Before(start) {
				start = p.EarliestStart
			}
			if p.Deadline.After(end) {
				end = p.Deadline
			}
		}
		window := end.Sub(start).Seconds()
		var adhoc float64
		for _, d := range in.Demand {
			if d.Site == id && !d.Hour.Before(start.Truncate(time.Hour)) && d.Hour.Before(end) {
				_, b := d.adhocAt(profile.StrictestQuantile, profile.MeanBytes)
				adhoc += b
			}
		}
		bandwidth := (float64(bytes) + adhoc) / window
		inFlight := float64(bytes) / perTask / window
		n := max(ceilPos(bandwidth/size.BandwidthBytesSec), ceilPos(inFlight/float64(size.MaxTasks)), 1)
		duration := math.Max(float64(bytes)/(float64(n)*size.BandwidthBytesSec), float64(largest)/perTask)
		se := SiteEstimate{
			Site: id, Migrations: len(batch), Bytes: bytes, Connectors: n,
			CPUMillis: n * size.CPUMillis, RAMBytes: int64(n) * size.RAMBytes,
			BandwidthBytesSec: float64(n) * size.BandwidthBytesSec, StorageBytes: max(int64(n)*size.StorageBytes, bytes),
			ExpectedSeconds: math.Round(duration),
		}
		est.Sites = append(est.Sites, se)
		est.ExpectedSeconds = max(est.ExpectedSeconds, se.ExpectedSeconds)
		est.Reasons = append(est.Reasons, fmt.Sprintf(
			"%s: %d migration(s), %s in a %s window plus %s of forecast ad-hoc work (p%.0f) need %s and %.1f in flight: %d %s connector(s), done in about %s",
			id, len(batch), byteSize(bytes), end.Sub(start), byteSize(int64(adhoc)), profile.StrictestQuantile*100,
			rate(bandwidth), inFlight, n, size.Name, seconds(se.ExpectedSeconds)))
		if profile.UplinkBytesSec > 0 && bandwidth > profile.UplinkBytesSec {
			est.Bottlenecks = append(est.Bottlenecks, Bottleneck{Site: id, Kind: "uplink", From: start, To: end,
				Detail: fmt.Sprintf("needs %s, uplink carries %s", rate(bandwidth), rate(profile.UplinkBytesSec))})
		}
		for _, e := range in.Events {
			if e.Site == id && e.Starts.Before(end) && e.Ends.After(start) && e.Kind != "maintenance" {
				est.Bottlenecks = append(est.Bottlenecks, Bottleneck{Site: id, Kind: e.Kind, From: e.Starts, To: e.Ends,
					Detail: fmt.Sprintf("%s %s during the window: %s", e.Severity, e.Kind, e.Detail)})
			}
		}
	}
	est.Bottlenecks = append(est.Bottlenecks, PlannedBottlenecks(in.Planned, in.Tiers, size, in.Events)...)
	return est
}

// byteSize formats a byte count for people.
func byteSize(b int64) string {
	switch {
	case b >= gib:
		return fmt.Sprintf("%.1f GiB", float64(b)/float64(gib))
	case b >= mib:
		return fmt.Sprintf("%.1f MiB", float64(b)/float64(mib))
	default:
		return fmt.Sprintf("%.1f KiB", float64(b)/float64(kib))
	}
}
