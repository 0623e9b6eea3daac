package planning

import (
	"fmt"
	"time"
)

// Scaling modes.
const (
	// ModeActive lets the fleet start and drain connectors by its plan.
	ModeActive = "active"
	// ModeForecastOnly plans and explains but starts and drains nothing on its own.
	ModeForecastOnly = "forecast-only"
)

// Policy is how an operator lets a pool scale. Overrides (pins, pause) still take
// precedence while they last.
type Policy struct {
	// Mode is ModeActive or ModeForecastOnly.
	Mode string `json:"mode"`
	// MinConnectors and MaxConnectors bound the pool's live connectors, all sites
	// together; MaxConnectors 0 means no bound of the operator's, which leaves
	// MaxPoolConnectors (see ConnectorLimit).
	MinConnectors int `json:"min_connectors"`
	MaxConnectors int `json:"max_connectors"`
	// ScaleInCooldown is how long a connector must have been idle, and how long since
	// its site last grew, before it is drained: a forecast dip alone does not scale in.
	// Zero ("auto") derives it from the boots the fleet measured (see Cooldown).
	ScaleInCooldown time.Duration `json:"scale_in_cooldown"`
	// GateMinCoverage is the accuracy gate: when, over at least GateMinScored hours, a
	// site's forecasts held fewer than this share of the actual arrivals in their band,
	// or scored no better than the hour-of-day rate (no skill, see ForecastAccuracy),
	// the site is scaled reactively, on the work there is, until they recover.
	GateMinCoverage float64 `json:"gate_min_coverage"`
	GateMinScored   int     `json:"gate_min_scored"`
	// SLASlack spends the SLAs' slack instead of connectors: headroom is kept only for
	// the migrations that cannot wait for a connector to boot (Site.PatientShare),
	// its slots are held for them at placement, and a migration that can wait is not
	// scaled for until its deadline leaves no more than a replacement's boot to spare
	// (Reservation.CanWait). Cheaper, and the patient tiers wait minutes.
	SLASlack bool `json:"sla_slack"`
}

// The defaults the fleet and the simulator share: how often the fleet plans, the
// floor of its lead time (the learned one takes over once it has measured
// minStarts boots), and the scale-in cooldown an "auto" policy uses before then.
const (
	DefaultTick            = 30 * time.Second
	DefaultLeadTime        = 5 * time.Minute
	DefaultScaleInCooldown = 2 * time.Minute
	// MinScaleInCooldown is the shortest cooldown "auto" derives: connectors that boot
	// in seconds would otherwise drain between two migrations.
	MinScaleInCooldown = time.Minute
)

// DefaultPolicy is what a pool starts with: an automatic scale-in cooldown.
func DefaultPolicy() Policy {
	return Policy{Mode: ModeActive, GateMinCoverage: 0.5, GateMinScored: 24}
}

// AutoCooldown is how a policy that sets no scale-in cooldown names it: derived from
// the boots (Cooldown).
const AutoCooldown = "auto"

// CooldownSetting is the policy's scale-in cooldown as an operator sets it: a
// duration, or AutoCooldown.
func (p Policy) CooldownSetting() string {
	if p.ScaleInCooldown > 0 {
		return p.ScaleInCooldown.String()
	}
	return AutoCooldown
}

// Cooldown is the scale-in cooldown in force: the policy's, or, where it sets none,
// half the median boot the fleet measured (boot; 0 while too few were measured, when
// DefaultScaleInCooldown stands), at least MinScaleInCooldown. An idle connector
// kept through a gap costs the gap, and one drained costs a boot and a wait when work
// comes back; on the simulator's month, a quarter of a boot was a little cheaper and
// a whole boot waited less, and half a boot sits between them (docs/simulator.md).
func (p Policy) Cooldown(boot time.Duration) time.Duration {
	switch {
	case p.ScaleInCooldown > 0:
		return p.ScaleInCooldown
	case boot <= 0:
		return DefaultScaleInCooldown
	}
	return max(boot/2, MinScaleInCooldown)
}

// Validate names the first field that is wrong.
func (p Policy) Validate() error {
	switch {
	case p.Mode != ModeActive && p.Mode != ModeForecastOnly:
		return fmt.Errorf("mode: must be %q or %q, got %q", ModeActive, ModeForecastOnly, p.Mode)
	case p.MinConnectors < 0 || p.MinConnectors > 1000:
		return fmt.Errorf("min_connectors: must be between 0 and 1000, got %d", p.MinConnectors)
	case p.MaxConnectors < 0 || p.MaxConnectors > MaxPoolConnectors:
		return fmt.Errorf("max_connectors: must be between 0 (no bound) and %d, got %d", MaxPoolConnectors, p.MaxConnectors)
	case p.MaxConnectors > 0 && p.MaxConnectors < p.MinConnectors:
		return fmt.Errorf("max_connectors: %d is below min_connectors %d", p.MaxConnectors, p.MinConnectors)
	case p.ScaleInCooldown < 0 || p.ScaleInCooldown > 24*time.Hour:
		return fmt.Errorf("scale_in_cooldown: must be between 0 (auto) and 24h, got %s", p.ScaleInCooldown)
	case p.GateMinCoverage < 0 || p.GateMinCoverage > 1:
		return fmt.Errorf("gate_min_coverage: must be between 0 and 1, got %v", p.GateMinCoverage)
	case p.GateMinScored < 1:
		return fmt.Errorf("gate_min_scored: must be at least 1, got %d", p.GateMinScored)
	}
	return nil
}

// MaxPoolConnectors is the most connectors one pool's fleet runs, whatever the policy:
// the fleet's state, carried from run to run, holds each of them (about 0.7 KB), and
// must stay well inside Temporal's 2 MB for a payload. More connectors want more pools.
const MaxPoolConnectors = 1000

// ConnectorLimit is the most live connectors the pool may have: MaxConnectors, or
// MaxPoolConnectors where the policy sets no bound.
func (p Policy) ConnectorLimit() int {
	if p.MaxConnectors == 0 {
		return MaxPoolConnectors
	}
	return p.MaxConnectors
}

// String describes the policy in a line, for audit trails and reasons.
func (p Policy) String() string {
	bound := fmt.Sprintf("%d..%d", p.MinConnectors, p.MaxConnectors)
	if p.MaxConnectors == 0 {
		bound = fmt.Sprintf("%d or more", p.MinConnectors)
	}
	line := fmt.Sprintf("mode %s, connectors %s, scale-in cooldown %s, gate %.0f%% over %d h",
		p.Mode, bound, p.CooldownSetting(), 100*p.GateMinCoverage, p.GateMinScored)
	if p.SLASlack {
		line += ", SLA slack used"
	}
	return line
}

// gated reports whether a site's forecasts are too wrong to scale on, and why: their
// band missed too often, or they scored no better than the hour-of-day rate, which
// a reactive policy follows as well.
func (p Policy) gated(site string, acc []ForecastAccuracy) (bool, string) {
	for _, a := range acc {
		if a.Site != site {
			continue
		}
		if a.Scored >= p.GateMinScored && a.Coverage < p.GateMinCoverage {
			return true, fmt.Sprintf("forecasts held %.0f%% of %d hours in their band, under the gate's %.0f%%: scaling on the work there is",
				100*a.Coverage, a.Scored, 100*p.GateMinCoverage)
		}
		if a.SkillScored >= p.GateMinScored && a.BaselinePinball > 0 && a.Pinball >= a.BaselinePinball {
			return true, fmt.Sprintf("forecasts scored no better than the hour-of-day rate over %d hours (pinball loss %.3f against its %.3f): scaling on the work there is",
				a.SkillScored, a.Pinball, a.BaselinePinball)
		}
	}
	return false, ""
}
