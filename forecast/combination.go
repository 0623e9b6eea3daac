package forecast

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Combination forecasts a series with several models and combines them, weighting each
// by how well it forecast the end of this very series: a rolling-origin cross-validation
// (Tashman 2000, "Out-of-sample tests of forecasting accuracy", IJF 16(4)) on the last
// Origins·Horizon points. Each member's error is its MASE over those forecasts; the Top
// best get weights proportional to 1/MASE (Top 1 is selection) and are refitted on the
// whole series, in the form they chose at validation where they choose one (Refitter). The combined quantiles are the weighted averages of the members'
// quantiles (Vincentization, Lichtendahl, Grushka-Cockayne and Winkler 2013).
//
// A member that cannot fit the shortened series is left out; if none can, the series is
// too short for cross-validation and every member that fits the whole series gets an
// equal weight.
type Combination struct {
	// Members are the registry names of the models to combine.
	Members []string
	// Period is the seasonal period, passed to every member.
	Period int
	// Horizon is the length of each validation forecast, usually the forecast horizon.
	Horizon int
	// Origins is how many validation forecasts each member makes, at least 1.
	Origins int
	// Top is how many of the best members are combined, at least 1.
	Top int
	// Anchors are members known to be good across many series, such as a global model
	// that learned from all of them. When ranking, their validation error is multiplied
	// by AnchorBonus (if positive), so that one short, noisy validation window replaces
	// them only with a clearly better member.
	Anchors     []string
	AnchorBonus float64
	// NewMember makes a member by name; nil means New. Prepare sets it to hand out
	// the global members it trained.
	NewMember func(name string, period int) (Model, error)

	members []Model
	weights []float64
	errors  []float64 // validation MASE per member, +Inf where it could not be scored
	order   []int     // members by validation error, best first
}

// Name lists the members with their weights, e.g. "combo(theta 0.62, ets 0.38)".
func (c *Combination) Name() string {
	var parts []string
	for i, m := range c.members {
		if c.weights[i] > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f", NameOf(m), c.weights[i]))
		}
	}
	return "combo(" + strings.Join(parts, ", ") + ")"
}

// Chosen returns the registry names of the members that carry weight, best first.
func (c *Combination) Chosen() []string {
	var out []string
	for _, i := range c.order {
		if c.weights[i] > 0 {
			out = append(out, c.Members[i])
		}
	}
	return out
}

// Fit cross-validates the members on the end of y, weights the best and refits them.
func (c *Combination) Fit(y []float64) error {
	if len(c.Members) == 0 || c.Horizon < 1 || c.Origins < 1 || c.Top < 1 {
		panic("forecast: Combination needs members, Horizon, Origins and Top of at least 1")
	}
	if err := requireFinite(y); err != nil {
		return err
	}
	k := len(c.Members)
	c.members, c.weights, c.errors = make([]Model, k), make([]float64, k), make([]float64, k)
	for i, name := range c.Members {
		if _, err := c.newMember(name); err != nil {
			panic("forecast: Combination member: " + err.Error())
		}
		c.members[i], c.errors[i] = c.validate(name, y)
	}
	order := make([]int, k)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return compareErr(c.errors[a], c.errors[b]) })
	if c.AnchorBonus > 0 {
		rank := func(i int) float64 {
			if slices.Contains(c.Anchors, c.Members[i]) {
				return c.errors[i] * c.AnchorBonus
			}
			return c.errors[i]
		}
		slices.SortStableFunc(order, func(a, b int) int { return compareErr(rank(a), rank(b)) })
	}
	c.order = order
	scored := !math.IsInf(c.errors[order[0]], 1)
	var fitted int
	var total float64
	for _, i := range order {
		if fitted == c.Top || scored && math.IsInf(c.errors[i], 1) {
			break
		}
		if refit(c.members[i], y) != nil {
			continue
		}
		w := 1.0
		if scored {
			w = 1 / max(c.errors[i], 1e-6)
		}
		c.weights[i] = w
		total += w
		fitted++
	}
	if fitted == 0 {
		return ErrTooShort
	}
	for i := range c.weights {
		c.weights[i] /= total
	}
	return nil
}

// validate returns a member's mean MASE over the validation origins, or +Inf if it
// cannot make them all, and the member as fitted at the latest origin, which Fit refits
// on the whole series.
func (c *Combination) validate(name string, y []float64) (Model, float64) {
	var sum float64
	var latest Model
	for o := c.Origins; o >= 1; o-- {
		end := len(y) - (o-1)*c.Horizon
		origin := end - c.Horizon
		m, _ := c.newMember(name)
		latest = m
		if origin < 2 || m.Fit(y[:origin]) != nil {
			return m, math.Inf(1)
		}
		fc, err := m.Forecast(c.Horizon, nil)
		if err != nil || !fc.finite() {
			return m, math.Inf(1)
		}
		scale := NaiveScale(y[:origin], c.Period)
		if scale == 0 {
			scale = NaiveScale(y[:origin], 1)
		}
		var mae float64
		for t, f := range fc.Mean {
			mae += math.Abs(y[origin+t] - f)
		}
		mae /= float64(c.Horizon)
		if scale > 0 {
			mae /= scale
		}
		sum += mae
	}
	return latest, sum / float64(c.Origins)
}

func (c *Combination) newMember(name string) (Model, error) {
	if c.NewMember != nil {
		return c.NewMember(name, c.Period)
	}
	return New(name, c.Period)
}

// Refitter is a model that can fit a series again in the form it chose when it last
// fitted, skipping its search. The combination refits members so after validating them:
// the form that forecast the end of the series best is the one it weighs.
type Refitter interface {
	Refit(y []float64) error
}

// refit refits m on y in its chosen form where it can, and fits it afresh otherwise.
func refit(m Model, y []float64) error {
	if r, ok := m.(Refitter); ok {
		return r.Refit(y)
	}
	return m.Fit(y)
}

// Forecast averages the weighted members' forecasts and quantiles.
func (c *Combination) Forecast(h int, quantiles []float64) (Forecast, error) {
	if c.members == nil {
		panic("forecast: Forecast called before Fit")
	}
	out := newForecast(h, quantiles)
	for i, m := range c.members {
		w := c.weights[i]
		if w == 0 {
			continue
		}
		fc, err := m.Forecast(h, quantiles)
		if err != nil {
			return Forecast{}, fmt.Errorf("%s: %w", NameOf(m), err)
		}
		for t := range h {
			out.Mean[t] += w * fc.Mean[t]
			for q := range quantiles {
				out.Values[q][t] += w * fc.Values[q][t]
			}
		}
	}
	return out, nil
}

func compareErr(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
