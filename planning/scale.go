package planning

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Pin bounds the number of live connectors at a site, whatever the forecast says.
// Max 0 means no upper bound. Who, Why and Until are the operator's override, so that
// the reasons can say whose pin held a site.
type Pin struct {
	Site  string    `json:"site"`
	Min   int       `json:"min"`
	Max   int       `json:"max"`
	Who   string    `json:"who,omitempty"`
	Why   string    `json:"why,omitempty"`
	Until time.Time `json:"until,omitzero"`
}

// What set a site's connectors after its need: a rule of the pool's policy, an
// operator's override, or nothing.
const (
	BoundNone         = "none"
	BoundGate         = "accuracy-gate"
	BoundForecastOnly = "forecast-only"
	BoundPaused       = "paused"
	BoundPoolMin      = "pool-min"
	BoundPoolMax      = "pool-max"
	BoundPin          = "pin"
)

// ScaleInput is what the scaling policy decides from.
type ScaleInput struct {
	Now time.Time
	// Size is the size new connectors get: how many migrations one runs at once.
	Size       Size
	Targets    []SiteTarget
	Connectors []Connector
	// Waiting are the migrations queued for a connector.
	Waiting []Reservation
	Policy  Policy
	// Boot is the median boot the fleet measured (BootTime), which an "auto" cooldown
	// is derived from.
	Boot time.Duration
	// Replace is how long a connector started now takes to be ready (ReplaceTime):
	// with the policy's SLA slack, waiting work that can wait twice that long is not
	// scaled for yet.
	Replace time.Duration
	// Accuracy is the recent forecast error per site, for the policy's gate.
	Accuracy []ForecastAccuracy
	// Paused stops autoscaling: only pins are enforced.
	Paused bool
	Pins   []Pin
	// Bottlenecks are the plan's; a site in a maintenance window starts no connector.
	Bottlenecks []Bottleneck
}

// What made a decision, in a word: the rules of Scale and the bounds above.
const (
	RuleForecast = "forecast" // the plan's target for the site
	RuleWork     = "work"     // the work there and its headroom, more than the forecast
	RuleReactive = "reactive" // a migration waited at a site with no live connector
	RuleScaleIn  = "scale-in" // idle past the cooldown
)

// StartDecision asks for one new connector.
type StartDecision struct {
	Site   string `json:"site"`
	Reason string `json:"reason"`
	// Rule is what made it: a Rule... or the Bound... that set the site's want.
	Rule string `json:"rule"`
}

// DrainDecision takes one idle connector out of service.
type DrainDecision struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
	Rule   string `json:"rule"`
}

// ScaleDecision is what the fleet should change now, and why.
type ScaleDecision struct {
	Start []StartDecision `json:"start"`
	// Drain lists idle connectors to take out of service.
	Drain []DrainDecision `json:"drain"`
	// Stop lists draining connectors that have no work left.
	Stop []string `json:"stop"`
	// Reasons explain each site's decision: the want, the rule or bound that set it,
	// and what holds back a scale-in.
	Reasons []string `json:"reasons"`
	// Bottlenecks are the sites the pool's maximum leaves short of what they need.
	Bottlenecks []Bottleneck `json:"bottlenecks"`
}

// siteWant is one site's connector count as the rules shape it.
type siteWant struct {
	site       string
	live       []Connector
	want, peak int
	why        string
	needed     int    // the want before the pool's bounds
	plan       string // the plan's reason for the site's target
	work       int    // migrations running and waiting there: the pool's maximum goes to work first
	rule       string // what set the want before the bounds: a Rule... or BoundGate
	bound      string // the last bound that changed the want (Bound...), empty if none did
	capped     string // the last bound that lowered it, for the shortfall
}

// Scale decides what to start and drain. Each site wants its plan's target or what its
// current work needs, whichever is more, or, when the accuracy gate trips, only what
// its current work needs; pins then clamp it, and the
// pool's bounds clamp the sites together. A paused pool or one in forecast-only mode
// starts and drains nothing but what pins demand. Scale-in drains only idle, automatic
// connectors that have been idle for the cooldown, at sites that have not grown within
// it and have no queued work, newest first (never external connectors, which count
// as live while healthy); draining connectors stop once their work is done.
func Scale(in ScaleInput) ScaleDecision {
	var d ScaleDecision
	waiting := in.Waiting // the waiting work each site scales for
	if in.Policy.SLASlack {
		// Work that can wait is scaled for a replacement before it no longer can, so
		// that its connector is ready by then and it leaves the held slots be.
		waiting = slices.DeleteFunc(slices.Clone(waiting), func(r Reservation) bool { return r.CanWait(in.Now, 2*in.Replace, in.Size) })
	}
	sites := make([]siteWant, 0, len(in.Targets))
	for _, t := range in.Targets {
		w := siteWant{site: t.Site, want: t.Connectors, peak: t.PeakConnectors, why: "forecast", plan: t.Reason, rule: RuleForecast}
		for _, c := range in.Connectors {
			if c.Site == t.Site && c.Live() {
				w.live = append(w.live, c)
				w.work += len(c.Migrations)
			}
		}
		for _, r := range in.Waiting {
			if r.Site == t.Site {
				w.work++
			}
		}
		if gated, why := in.Policy.gated(t.Site, in.Accuracy); gated {
			w.want, w.why, w.rule = reactiveWant(t.Site, in.Size, w.live, waiting, 0), why, BoundGate
		} else if work := reactiveWant(t.Site, in.Size, w.live, waiting, t.Headroom); work > w.want {
			// Warm first, then scale up as the work comes, keeping room for the next.
			w.want, w.why, w.rule = work, fmt.Sprintf("the work there and %d slot(s) of headroom need %d, more than the forecast's %d", t.Headroom, work, t.Connectors), RuleWork
		}
		if in.Paused || in.Policy.Mode == ModeForecastOnly {
			if in.Paused {
				w.why = "autoscaling paused"
			} else {
				w.why = fmt.Sprintf("forecast-only: the plan wants %d, nothing changes", w.want)
			}
			w.want = len(w.live)
		}
		w.needed = w.want
		sites = append(sites, w)
	}
	boundPool(sites, in.Policy, in.Paused || in.Policy.Mode == ModeForecastOnly)
	for _, w := range sites {
		if b, short := w.shortfall(in.Now, in.Now.Add(time.Hour)); short {
			d.Bottlenecks = append(d.Bottlenecks, b)
		}
	}
	for i := range sites {
		w := &sites[i]
		w.pin(in.Pins)
		d.Reasons = append(d.Reasons, fmt.Sprintf("%s: %d live, wants %d (%s)", w.site, len(w.live), w.want, w.why))
		if m, ok := UnderMaintenance(in.Bottlenecks, w.site, in.Now); ok && w.want > len(w.live) {
			d.Reasons = append(d.Reasons, fmt.Sprintf("%s: in maintenance until %s, starts nothing (%s)", w.site, m.To.Format("Mon 15:04"), m.Detail))
			w.want = len(w.live)
		}
		for j := len(w.live); j < w.want; j++ {
			why := fmt.Sprintf("%s has %d live, wants %d (%s)", w.site, len(w.live), w.want, w.why)
			if w.plan != "" {
				why += "; plan: " + w.plan
			}
			d.Start = append(d.Start, StartDecision{Site: w.site, Reason: why, Rule: cmp.Or(w.bound, w.rule)})
		}
		if len(w.live) > w.want {
			drain, held := scaleIn(in, *w)
			for _, id := range drain {
				d.Drain = append(d.Drain, DrainDecision{ID: id, Rule: RuleScaleIn, Reason: fmt.Sprintf("idle past the %s scale-in cooldown; %s has %d live, wants %d (%s)",
					in.Policy.Cooldown(in.Boot), w.site, len(w.live), w.want, w.why)})
			}
			if held != "" {
				d.Reasons = append(d.Reasons, fmt.Sprintf("%s: keeps %d more than it wants: %s", w.site, len(w.live)-w.want-len(drain), held))
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

// reactiveWant is what a site's current work needs: its running and queued
// migrations, and headroom free slots, over the concurrency of the size new connectors
// get, and at least the connectors busy.
func reactiveWant(site string, size Size, live []Connector, waiting []Reservation, headroom int) int {
	perConnector := max(size.MaxTasks, 1)
	tasks, busy := 0, 0
	for _, c := range live {
		tasks += len(c.Migrations)
		if len(c.Migrations) > 0 {
			busy++
		}
	}
	for _, r := range waiting {
		if r.Site == site {
			tasks++
		}
	}
	return max((tasks+headroom+perConnector-1)/perConnector, busy)
}

// boundPool clamps the sites' wants to the pool's minimum and maximum: over the
// maximum, the site wanting most, then the one with the least work, gives one up at a
// time; under the minimum, the site with the highest peak (then the most wanted) gets
// one more at a time. Ties go by site ID, so the result does not depend on order.
// Frozen pools are left alone.
func boundPool(sites []siteWant, p Policy, frozen bool) {
	if frozen || len(sites) == 0 {
		return
	}
	total := 0
	for _, w := range sites {
		total += w.want
	}
	for total > p.ConnectorLimit() {
		i := pick(sites, func(a, b siteWant) bool { return a.want > b.want || a.want == b.want && a.work < b.work })
		sites[i].want--
		sites[i].why = fmt.Sprintf("the pool's maximum of %d connectors", p.ConnectorLimit())
		sites[i].bound, sites[i].capped = BoundPoolMax, sites[i].why
		total--
	}
	for total < p.MinConnectors {
		i := pick(sites, func(a, b siteWant) bool { return a.peak > b.peak || a.peak == b.peak && a.want > b.want })
		sites[i].want++
		sites[i].why = fmt.Sprintf("the pool's minimum of %d connectors", p.MinConnectors)
		sites[i].bound = BoundPoolMin
		total++
	}
}

// pin clamps the want to the site's pins, which win over the forecast and the pool's
// bounds.
func (w *siteWant) pin(pins []Pin) {
	for _, p := range pins {
		if p.Site != w.site {
			continue
		}
		if w.want < p.Min {
			w.want, w.why, w.bound = p.Min, p.whose(fmt.Sprintf("pinned to at least %d", p.Min)), BoundPin
		}
		if p.Max > 0 && w.want > p.Max {
			w.want, w.why, w.bound = p.Max, p.whose(fmt.Sprintf("pinned to at most %d", p.Max)), BoundPin
			w.capped = w.why
		}
	}
}

// whose adds to what a pin does who set it, until when and why, where that is known.
func (p Pin) whose(what string) string {
	if p.Who == "" {
		return what
	}
	return fmt.Sprintf("%s by %s until %s (%s)", what, p.Who, p.Until.Format("Mon 15:04"), p.Why)
}

// shortfall is the bottleneck of a site that a bound left short of the connectors it
// needs, from from to to; false when none did.
func (w siteWant) shortfall(from, to time.Time) (Bottleneck, bool) {
	if w.want >= w.needed || w.capped == "" {
		return Bottleneck{}, false
	}
	return Bottleneck{Site: w.site, Kind: "connectors", From: from, To: to,
		Detail: fmt.Sprintf("%s leaves %s %d short of the %d it needs", w.capped, w.site, w.needed-w.want, w.needed)}, true
}

// pick returns the index of the site that better ranks first, ties by site ID.
func pick(sites []siteWant, better func(a, b siteWant) bool) int {
	best := 0
	for i := 1; i < len(sites); i++ {
		if better(sites[i], sites[best]) || !better(sites[best], sites[i]) && sites[i].site < sites[best].site {
			best = i
		}
	}
	return best
}

// scaleIn picks the idle connectors to drain at a site with more live connectors than
// it wants, and says what held others back.
func scaleIn(in ScaleInput, w siteWant) (drain []string, held string) {
	cool := in.Policy.Cooldown(in.Boot)
	for _, r := range in.Waiting {
		if r.Site == w.site {
			return nil, "migrations are queued there"
		}
	}
	var newest time.Time
	for _, c := range w.live {
		if c.CreatedAt.After(newest) {
			newest = c.CreatedAt
		}
	}
	if cool > 0 && in.Now.Sub(newest) < cool {
		return nil, fmt.Sprintf("it grew %s ago, within the %s scale-in cooldown", in.Now.Sub(newest).Round(time.Second), cool)
	}
	var idle []Connector
	for _, c := range w.live {
		// An operator's connector stays until the operator drains it; an external one
		// is the customer's and never leaves by scaling.
		if c.External && len(c.Migrations) == 0 {
			held = "external connectors are the customer's and never scaled in"
		}
		if c.Manual || c.External || len(c.Migrations) > 0 {
			continue
		}
		if c.State == StateWarming {
			// Still booting: it was started for work to come, and is not idle yet.
			held = "connectors are still booting"
			continue
		}
		since := c.IdleSince
		if since.IsZero() {
			since = c.CreatedAt // never busy: idle since it was made
		}
		if cool > 0 && in.Now.Sub(since) < cool {
			held = fmt.Sprintf("idle connectors have not been idle for the %s cooldown", cool)
			continue
		}
		idle = append(idle, c)
	}
	// Newest first: the oldest connectors have proven themselves.
	slices.SortFunc(idle, func(a, b Connector) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	for i := 0; i < len(w.live)-w.want && i < len(idle); i++ {
		drain = append(drain, idle[i].ID)
	}
	if len(drain) == len(w.live)-w.want {
		held = ""
	}
	return drain, held
}

// Stranded starts a connector for each site where a migration waits with no live
// connector at all, none among pending starts either: a forecast that missed must not
// leave work stranded. It starts nothing where may says no (a site in maintenance,
// pinned to none, unknown), and nothing beyond the pool's maximum, which the operator
// set; the plan reports the shortfall, and Scale gives the maximum to the sites with
// work.
func Stranded(conns []Connector, pending []StartDecision, waiting []Reservation, p Policy, may func(site string) bool) []StartDecision {
	count := len(pending)
	for _, c := range conns {
		if c.Live() {
			count++
		}
	}
	var out []StartDecision
	for _, r := range waiting {
		has := slices.ContainsFunc(conns, func(c Connector) bool { return c.Site == r.Site && c.Live() }) ||
			slices.ContainsFunc(pending, func(s StartDecision) bool { return s.Site == r.Site }) ||
			slices.ContainsFunc(out, func(s StartDecision) bool { return s.Site == r.Site })
		if has || !may(r.Site) || count+len(out) >= p.ConnectorLimit() {
			continue
		}
		out = append(out, StartDecision{Site: r.Site, Rule: RuleReactive,
			Reason: fmt.Sprintf("reactive: migration %s waited at %s with no live connector", r.MigrationID, r.Site)})
	}
	return out
}
