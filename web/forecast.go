package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// forecastBody is POST /forecast's body; times are strings so that a bad one is
// reported with its field.
type forecastBody struct {
	ID            string            `json:"id"`
	VMIDs         []string          `json:"vm_ids"`
	VMs           []planning.VMSpec `json:"vms"`
	EarliestStart string            `json:"earliest_start"`
	Deadline      string            `json:"deadline"`
	SLATier       string            `json:"sla_tier"`
	Plan          bool              `json:"plan"`
	// Wave is the wave a planned batch joins: see workflows.ForecastRequest.
	Wave   string      `json:"wave"`
	WhatIf *whatIfBody `json:"what_if"`
}

// whatIfBody is POST /forecast's what_if section, with times and durations as strings.
type whatIfBody struct {
	AddWave    bool     `json:"add_wave"`
	LoseLink   []string `json:"lose_link"`
	TightenSLA []struct {
		Tier        string `json:"tier"`
		MaxTransfer string `json:"max_transfer"`
	} `json:"tighten_sla"`
	Blackout []struct {
		Site   string `json:"site"`
		From   string `json:"from"`
		To     string `json:"to"`
		Detail string `json:"detail"`
	} `json:"blackout"`
}

// request converts the section, naming any bad field.
func (b whatIfBody) request() (*workflows.WhatIfRequest, error) {
	w := &workflows.WhatIfRequest{AddWave: b.AddWave, LoseLink: b.LoseLink}
	for i, t := range b.TightenSLA {
		d, err := time.ParseDuration(t.MaxTransfer)
		if err != nil || d <= 0 {
			return nil, validation.Field(fmt.Sprintf("what_if.tighten_sla[%d].max_transfer", i), "must be a positive duration such as 1m, got %q", t.MaxTransfer)
		}
		w.TightenSLA = append(w.TightenSLA, planning.TierChange{Tier: t.Tier, MaxTransfer: d})
	}
	for i, bo := range b.Blackout {
		from, err := parseTime(fmt.Sprintf("what_if.blackout[%d].from", i), bo.From)
		if err != nil {
			return nil, err
		}
		to, err := parseTime(fmt.Sprintf("what_if.blackout[%d].to", i), bo.To)
		if err != nil {
			return nil, err
		}
		w.Blackout = append(w.Blackout, planning.Event{Site: bo.Site, Starts: from, Ends: to, Detail: "what-if blackout " + bo.Detail})
	}
	return w, nil
}

func (s *Server) forecast(c echo.Context) error {
	var b forecastBody
	if err := decode(c, &b); err != nil {
		return err
	}
	if b.ID == "" {
		b.ID = "fc-" + uuid.NewString()[:8]
	}
	req := workflows.ForecastRequest{ID: b.ID, VMIDs: b.VMIDs, VMs: b.VMs, SLATier: b.SLATier, Plan: b.Plan, Wave: b.Wave}
	var err error
	if req.EarliestStart, err = parseTime("earliest_start", b.EarliestStart); err != nil {
		return err
	}
	if req.Deadline, err = parseTime("deadline", b.Deadline); err != nil {
		return err
	}
	if b.WhatIf != nil {
		if req.WhatIf, err = b.WhatIf.request(); err != nil {
			return err
		}
	}
	if err := req.Validate(); err != nil {
		return err
	}
	var answer workflows.ForecastAnswer
	if err := s.update(c, workflows.UpdateForecast, "forecast-"+req.ID, req, &answer); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, answer)
}

// simulateBody is POST /simulate's body. Hours and seed are pointers, so that one
// left out takes its default while a zero is checked.
type simulateBody struct {
	Policy workflows.PolicyRequest `json:"policy"`
	Hours  *int                    `json:"hours"`
	Seed   *uint64                 `json:"seed"`
}

// SimulationView is POST /simulate's answer: the policies compared, with the cooldown
// as a duration string, and the simulation. It is the API's own type, copied from the
// simulator's answer field by field, so that a change inside the simulator cannot
// change the API unseen.
type SimulationView struct {
	Current  PolicyView `json:"current"`
	Proposed PolicyView `json:"proposed"`
	// From and To are the window simulated, and Seed the arrivals' random seed.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	Seed uint64    `json:"seed"`
	// Planned and Adhoc count the migrations simulated: the pool's planned ones and
	// the ad-hoc arrivals drawn from the forecast.
	Planned int `json:"planned"`
	Adhoc   int `json:"adhoc"`
	// Size is the connector size and ProvisionDelaySeconds the median boot the
	// simulated connectors take.
	Size                  string  `json:"size"`
	ProvisionDelaySeconds float64 `json:"provision_delay_s"`
	// Results are the current policy's run, then the proposed one's, then the
	// baseline's where a setting of it kept the wait.
	Results []SimulatedPolicy `json:"results"`
	// Baseline is what both policies are measured against: reactive+waves tuned on the
	// same work.
	Baseline SimulatedBaseline `json:"baseline"`
	// Reasoning holds a sentence a policy.
	Reasoning []string `json:"reasoning"`
}

// SimulatedBaseline is the competent reactive baseline of a simulation: reactive+waves
// (queue scaling with a pre-warm of the planned waves) at the cheapest of Settings
// settings whose p99 wait is at most MaxWaitSeconds on the same work, Setting as
// starter simulate's flags; empty when none kept the wait.
type SimulatedBaseline struct {
	Setting        string  `json:"setting"`
	Settings       int     `json:"settings"`
	MaxWaitSeconds float64 `json:"max_wait_s"`
}

// SimulatedOutcomes are how a set of simulated migrations did: how many, how many
// breached their SLA, and the quantiles of their waits for a connector, in seconds.
type SimulatedOutcomes struct {
	Migrations  int     `json:"migrations"`
	SLABreaches int     `json:"sla_breaches"`
	WaitP50     float64 `json:"wait_p50_s"`
	WaitP95     float64 `json:"wait_p95_s"`
	WaitP99     float64 `json:"wait_p99_s"`
}

// SimulatedTierOutcomes are how one SLA tier's simulated migrations did.
type SimulatedTierOutcomes struct {
	Tier string `json:"tier"`
	SimulatedOutcomes
}

// SimulatedPolicy is how one policy did in a simulation.
type SimulatedPolicy struct {
	Name string `json:"name"`
	// SimulatedOutcomes are every migration's, each wait counted (a migration waits
	// again after a failed transfer); Wave and Adhoc the same for the planned
	// migrations and for the others.
	SimulatedOutcomes
	Wave  SimulatedOutcomes `json:"wave"`
	Adhoc SimulatedOutcomes `json:"adhoc"`
	// Tiers are the same for each SLA tier's migrations, strictest first: where the
	// SLA slack is used, the tiers that may wait do.
	Tiers          []SimulatedTierOutcomes `json:"tiers"`
	ConnectorHours float64                 `json:"connector_hours"`
	// Utilization is the share of paid task slots that moved bytes.
	Utilization float64 `json:"utilization"`
	// ScaleEvents counts connector starts and drains.
	ScaleEvents int `json:"scale_events"`
	// Failures are the transfers that failed and resumed elsewhere.
	Failures int `json:"failures"`
	// Unserved are the migrations still not done a day after the last arrival: the
	// policy left them no connector. They count as SLA breaches.
	Unserved int `json:"unserved"`
	// Seconds is how long the run took on the worker.
	Seconds float64 `json:"run_seconds"`
	// VersusBaseline is the run's connector-hours over the baseline's; absent for the
	// baseline itself and where there is none.
	VersusBaseline float64 `json:"vs_baseline,omitempty"`
}

// simulate runs a short simulation of the pool's planned work under its policy and a
// proposed change to it; nothing changes.
func (s *Server) simulate(c echo.Context) error {
	var b simulateBody
	if err := decode(c, &b); err != nil {
		return err
	}
	req := workflows.SimulateRequest{Policy: b.Policy, Hours: 24, Seed: 1}
	if b.Hours != nil {
		req.Hours = *b.Hours
	}
	if b.Seed != nil {
		req.Seed = *b.Seed
	}
	if err := req.Validate(); err != nil {
		return err
	}
	var answer workflows.SimulateAnswer
	if err := s.update(c, workflows.UpdateSimulate, "", req, &answer); err != nil {
		return err
	}
	r := answer.Result
	view := SimulationView{Current: policyView(answer.Current), Proposed: policyView(answer.Proposed),
		From: r.From, To: r.To, Seed: r.Seed, Planned: r.Planned, Adhoc: r.Adhoc, Size: r.Size,
		ProvisionDelaySeconds: r.ProvisionDelaySeconds, Reasoning: r.Reasoning, Baseline: SimulatedBaseline(r.Baseline)}
	for _, x := range r.Results {
		run := SimulatedPolicy{Name: x.Name, SimulatedOutcomes: SimulatedOutcomes(x.Outcomes),
			Wave: SimulatedOutcomes(x.Wave), Adhoc: SimulatedOutcomes(x.Adhoc), ConnectorHours: x.ConnectorHours, Utilization: x.Utilization,
			ScaleEvents: x.ScaleEvents, Failures: x.Failures, Unserved: x.Unserved, Seconds: x.Seconds, VersusBaseline: x.VersusBaseline}
		for _, t := range x.Tiers {
			run.Tiers = append(run.Tiers, SimulatedTierOutcomes{Tier: t.Tier, SimulatedOutcomes: SimulatedOutcomes(t.Outcomes)})
		}
		view.Results = append(view.Results, run)
	}
	return c.JSON(http.StatusOK, view)
}
