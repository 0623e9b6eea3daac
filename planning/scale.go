package planning

import (
	"fmt"
	"slices"
)

// Pin bounds the number of live connectors at a site, whatever the forecast says.
// Max 0 means no upper bound.
type Pin struct {
	Site string `json:"site"`
	Min  int    `json:"min"`
	Max  int    `json:"max"`
}

// ScaleInput is what the scaling policy decides from.
type ScaleInput struct {
	Targets    []SiteTarget
	Connectors []Connector
	// Paused stops autoscaling: only pins are enforced.
	Paused bool
	Pins   []Pin
}

// StartDecision asks for one new connector.
type StartDecision struct {
	Site   string `json:"site"`
	Reason string `json:"reason"`
}

// ScaleDecision is what the fleet should change now.
type ScaleDecision struct {
	Start []StartDecision `json:"start"`
	// Drain lists idle connectors to take out of service.
	Drain []string `json:"drain"`
	// Stop lists draining connectors that have no work left.
	Stop []string `json:"stop"`
}

// Scale compares each site's live connectors with its target, clamped by any pin, and
// decides what to start and what to drain. It drains only idle, automatic connectors,
// newest first, and stops draining connectors once their work is done.
func Scale(in ScaleInput) ScaleDecision {
	var d ScaleDecision
	for _, t := range in.Targets {
		var live []Connector
		for _, c := range in.Connectors {
			if c.Site == t.Site && c.Live() {
				live = append(live, c)
			}
		}
		want, why := t.Connectors, "forecast"
		if in.Paused {
			want, why = len(live), "autoscaling paused"
		}
		for _, p := range in.Pins {
			if p.Site != t.Site {
				continue
			}
			if want < p.Min {
				want, why = p.Min, fmt.Sprintf("pinned to at least %d", p.Min)
			}
			if p.Max > 0 && want > p.Max {
				want, why = p.Max, fmt.Sprintf("pinned to at most %d", p.Max)
			}
		}
		for i := len(live); i < want; i++ {
			d.Start = append(d.Start, StartDecision{Site: t.Site,
				Reason: fmt.Sprintf("%s has %d live, wants %d (%s)", t.Site, len(live), want, why)})
		}
		if len(live) > want {
			idle := slices.DeleteFunc(slices.Clone(live), func(c Connector) bool { return c.Manual || len(c.Migrations) > 0 })
			// Newest first: the oldest connectors have proven themselves.
			slices.SortFunc(idle, func(a, b Connector) int {
				if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
					return c
				}
				return compareStrings(b.ID, a.ID)
			})
			for i := 0; i < len(live)-want && i < len(idle); i++ {
				d.Drain = append(d.Drain, idle[i].ID)
			}
		}
	}
	for _, c := range in.Connectors {
		if c.State == StateDraining && len(c.Migrations) == 0 {
			d.Stop = append(d.Stop, c.ID)
		}
	}
	return d
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
