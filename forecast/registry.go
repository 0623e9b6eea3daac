package forecast

import (
	"fmt"
	"slices"
	"strings"
)

// constructors are the models by the names that the CLI, the backtest and the fleet use.
var constructors = map[string]func(period int) Model{
	"snaive": func(m int) Model { return &SeasonalNaive{Period: m} },
	// The longest season: a week for hourly data.
	"snaive-long": func(m int) Model { p := MSTLPeriods(m); return &SeasonalNaive{Period: p[len(p)-1]} },
	"naive2":      func(m int) Model { return &Naive2{Period: m} },
	"theta":       func(m int) Model { return &Theta{Period: m} },
	"ets":         func(m int) Model { return &AutoETS{Period: m, Window: 504} },
	"combo":       func(m int) Model { return NewCombination(m) },
	"mstl":        func(m int) Model { return &MSTL{Periods: MSTLPeriods(m), Adjusted: &AutoETS{Period: 1}} },
}

// ComboMembers are the models the default combination weighs.
var ComboMembers = []string{"snaive", "snaive-long", "theta", "ets", "mstl"}

// NewCombination returns the default combination for a seasonal period: the
// ComboMembers, validated on one forecast of two seasons at the series' end, the best
// two averaged.
func NewCombination(period int) *Combination {
	return &Combination{Members: ComboMembers, Period: period, Horizon: max(2*period, 8), Origins: 1, Top: 2}
}

// DefaultModel is the model used where none is named.
const DefaultModel = "combo"

// BaselineModel is the model that OWA is relative to in backtests.
const BaselineModel = "naive2"

// ModelNames returns the names New accepts, sorted.
func ModelNames() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// New returns a fresh model by name, for a series with the given seasonal period.
func New(name string, period int) (Model, error) {
	if period < 1 {
		return nil, fmt.Errorf("forecast: period must be at least 1, got %d", period)
	}
	c, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("forecast: unknown model %q; want one of %s", name, strings.Join(ModelNames(), ", "))
	}
	return c(period), nil
}
