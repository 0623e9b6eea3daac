package planning

import (
	"fmt"
	"slices"
	"time"
)

// WhatIf is a change to the world that POST /forecast can plan for without making it:
// a wave more, a site's link lost, an SLA tightened, a blackout.
type WhatIf struct {
	// AddWave is known work added to the plan.
	AddWave []PlannedMigration `json:"add_wave,omitempty"`
	// LoseLink names sites whose uplink is down.
	LoseLink []string `json:"lose_link,omitempty"`
	// TightenSLA sets tiers' maximum transfer times.
	TightenSLA []TierChange `json:"tighten_sla,omitempty"`
	// Blackout adds maintenance windows.
	Blackout []Event `json:"blackout,omitempty"`
}

// TierChange is a tier with a new maximum transfer time.
type TierChange struct {
	Tier        string        `json:"tier"`
	MaxTransfer time.Duration `json:"max_transfer"`
}

// Apply returns the planning input as it would be: the wave's migrations enter demand
// in their start hour, lost links and blackouts are added, and tiers are tightened,
// and with them every site's strictest bound (a site's profile does not say which
// tiers it holds, so the tighter bound is assumed to be in use everywhere).
func (w WhatIf) Apply(in PredictInput) PredictInput {
	out := in
	out.Demand = slices.Clone(in.Demand)
	for _, p := range w.AddWave {
		hour := p.EarliestStart.Truncate(time.Hour)
		i := slices.IndexFunc(out.Demand, func(d Demand) bool { return d.Site == p.Site && d.Hour.Equal(hour) })
		if i < 0 {
			out.Demand = append(out.Demand, Demand{Site: p.Site, Hour: hour})
			i = len(out.Demand) - 1
		}
		out.Demand[i].Planned++
		out.Demand[i].PlannedBytes += float64(p.Bytes)
	}
	out.Planned = append(slices.Clone(in.Planned), w.AddWave...)
	out.LinkDown = append(slices.Clone(in.LinkDown), w.LoseLink...)
	out.Events = append(slices.Clone(in.Events), w.Blackout...)
	out.Tiers = slices.Clone(in.Tiers)
	out.Sites = slices.Clone(in.Sites)
	for _, c := range w.TightenSLA {
		for i := range out.Tiers {
			if out.Tiers[i].Name == c.Tier && c.MaxTransfer < out.Tiers[i].MaxTransfer {
				out.Tiers[i].MaxTransfer = c.MaxTransfer
			}
		}
		for i := range out.Sites {
			if out.Sites[i].MaxTransfer == 0 || c.MaxTransfer < out.Sites[i].MaxTransfer {
				out.Sites[i].MaxTransfer = c.MaxTransfer
			}
		}
	}
	return out
}

// Describe says what the what-if changes, for the answer's reasoning.
func (w WhatIf) Describe() []string {
	var out []string
	if len(w.AddWave) > 0 {
		out = append(out, fmt.Sprintf("what if: a wave of %d migration(s) more", len(w.AddWave)))
	}
	for _, s := range w.LoseLink {
		out = append(out, "what if: "+s+" loses its link")
	}
	for _, c := range w.TightenSLA {
		out = append(out, fmt.Sprintf("what if: %s must copy within %s", c.Tier, c.MaxTransfer))
	}
	for _, b := range w.Blackout {
		out = append(out, fmt.Sprintf("what if: %s is blacked out %s–%s", b.Site, b.Starts.Format(time.RFC3339), b.Ends.Format(time.RFC3339)))
	}
	return out
}
