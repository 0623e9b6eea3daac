package sim

import (
	"cmp"
	"container/heap"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/pmo-dev/pmo/trace"

	"github.com/pmo-dev/pmo/planning"
)

// Event kinds, in the order they are handled at the same instant: what frees or adds
// capacity first, then arrivals, then the policy.
const (
	evDone = iota
	evReady
	evKnown
	evArrive
	evTick
)

type event struct {
	at   time.Time
	kind int
	seq  int // tie-break: the order events were scheduled
	// req is the request of evKnown, evArrive and evDone; conn the connector of
	// evReady and evDone; failed says an evDone is a failure.
	req    int
	conn   string
	failed bool
}

type events []event

func (e events) Len() int { return len(e) }
func (e events) Less(i, j int) bool {
	if c := e[i].at.Compare(e[j].at); c != 0 {
		return c < 0
	}
	if e[i].kind != e[j].kind {
		return e[i].kind < e[j].kind
	}
	return e[i].seq < e[j].seq
}
func (e events) Swap(i, j int) { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)   { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

// start is a connector's start.
type start struct {
	id string
	at time.Time
}

// run is one policy's pass over the world.
type run struct {
	w      *World
	cfg    Config
	policy Policy
	q      events
	seq    int
	// siteStarts counts each site's connector starts: the k-th start at a site boots
	// in the site's k-th delay (bootDelay), whatever happens elsewhere.
	siteStarts map[string]int

	conns   []planning.Connector
	starts  []start              // every connector started, in order: each is paid from then
	started map[string]time.Time // the same, by ID
	stopped map[string]time.Time
	waiting []planning.Reservation
	known   []planning.PlannedMigration
	delays  []float64

	remaining []float64 // bytes each request still has to move
	// since is when each request began its current wait for a connector (its
	// arrival, or a failed transfer), zero while it has one; waited sums its waits.
	since     []time.Time
	waited    []float64
	done      []time.Time
	failedYet []bool // whether the request's first transfer failed already
	nextID    int
	res       Result
	busy      float64 // task-seconds spent moving bytes
	lastDone  time.Time
}

// Run replays the world's trace against the policy and measures it.
func Run(w *World, p Policy) (Result, error) {
	began := time.Now()
	r := &run{w: w, cfg: w.Config, policy: p, siteStarts: map[string]int{},
		started: map[string]time.Time{}, stopped: map[string]time.Time{},
		remaining: make([]float64, len(w.Requests)),
		since:     make([]time.Time, len(w.Requests)), waited: make([]float64, len(w.Requests)),
		done: make([]time.Time, len(w.Requests)), failedYet: make([]bool, len(w.Requests))}
	r.res = Result{Name: p.Name()}
	if err := p.Reset(w); err != nil {
		return Result{}, err
	}
	for i, req := range w.Requests {
		r.remaining[i] = float64(req.Bytes)
		if req.KnownAt.Before(req.Arrival) {
			r.push(event{at: req.KnownAt, kind: evKnown, req: i})
		}
		r.push(event{at: req.Arrival, kind: evArrive, req: i})
	}
	last := w.Requests[len(w.Requests)-1].Arrival
	r.push(event{at: w.start, kind: evTick})
	left := len(w.Requests)
	nextProgress := w.start
	for r.q.Len() > 0 && left > 0 {
		e := heap.Pop(&r.q).(event)
		switch e.kind {
		case evKnown:
			req := w.Requests[e.req]
			r.known = append(r.known, planning.PlannedMigration{ID: req.ID, VMID: req.VMID, Site: req.Site, Bytes: req.Bytes,
				SLATier: req.SLATier, EarliestStart: req.Arrival, Deadline: req.Deadline})
		case evArrive:
			req := w.Requests[e.req]
			r.known = slices.DeleteFunc(r.known, func(p planning.PlannedMigration) bool { return p.ID == req.ID })
			r.waiting = append(r.waiting, planning.Reservation{MigrationID: req.ID, Site: req.Site,
				Bytes: req.Bytes, Deadline: req.Deadline, RequestedAt: req.Arrival})
			r.since[e.req] = e.at
		case evReady:
			if i := r.index(e.conn); i >= 0 && r.conns[i].State == planning.StateWarming {
				r.conns[i].State, r.conns[i].ReadyAt, r.conns[i].IdleSince = planning.StateWarm, e.at, e.at
				r.delays = append(r.delays, e.at.Sub(r.started[e.conn]).Seconds())
			}
		case evDone:
			if r.finish(e) {
				left--
			}
		case evTick:
			if e.at.Sub(last) > r.cfg.GiveUpAfter {
				// The policy leaves them no connector: that is its result, not an
				// error of the run. They are counted unserved, past their SLA.
				r.lastDone = e.at
				r.res.Unserved = left
				left = 0
				continue
			}
			if err := r.tick(e.at); err != nil {
				return Result{}, err
			}
			if next := e.at.Add(r.cfg.Tick); left > 0 {
				r.push(event{at: next, kind: evTick})
			}
			if r.cfg.Progress != nil && !e.at.Before(nextProgress) {
				r.cfg.Progress(e.at, last)
				nextProgress = e.at.Add(time.Hour)
			}
		}
		r.assign(e.at)
	}
	r.close()
	r.res.Seconds = time.Since(began).Seconds()
	return r.res, nil
}

func (r *run) push(e event) {
	r.seq++
	e.seq = r.seq
	heap.Push(&r.q, e)
}

func (r *run) index(id string) int {
	return slices.IndexFunc(r.conns, func(c planning.Connector) bool { return c.ID == id })
}

// tick lets the policy decide, applies its decision, and samples the fleet.
func (r *run) tick(now time.Time) error {
	// The fleet learns its lead time from the newest hundred boots.
	v := &View{Now: now, Connectors: r.conns, Waiting: r.waiting, Known: r.known, ReadyDelays: r.delays[max(len(r.delays)-100, 0):],
		starts: r.siteStarts, world: r.w}
	d, err := r.policy.Decide(v)
	if err != nil {
		return fmt.Errorf("%s at %s: %w", r.policy.Name(), now.Format(time.RFC3339), err)
	}
	r.start(now, d.Start)
	for _, id := range d.Drain {
		if i := r.index(id); i >= 0 && r.conns[i].Live() {
			r.conns[i].State = planning.StateDraining
			r.res.ScaleEvents++
		}
	}
	r.stopIdle(now)
	if now.Sub(r.w.start)%r.cfg.Sample == 0 {
		p := Point{At: now, Demand: len(r.waiting)}
		for _, c := range r.conns {
			p.Demand += len(c.Migrations)
			p.Connectors++
			if c.State == planning.StateWarm || c.State == planning.StateActive {
				p.Capacity += c.Size.MaxTasks
			}
		}
		r.res.Series = append(r.res.Series, p)
	}
	return nil
}

// start starts a connector for each decision; each becomes ready after a boot.
func (r *run) start(now time.Time, starts []planning.StartDecision) {
	for _, s := range starts {
		r.nextID++
		id := fmt.Sprintf("%s-%d", s.Site, r.nextID)
		c := planning.Connector{ID: id, Site: s.Site, State: planning.StateWarming, Size: r.cfg.Size, CreatedAt: now, Reason: s.Reason}
		r.conns = append(r.conns, c)
		r.started[id] = now
		r.starts = append(r.starts, start{id, now})
		r.push(event{at: now.Add(r.w.bootDelay(s.Site, r.siteStarts[s.Site])), kind: evReady, conn: id})
		r.siteStarts[s.Site]++
		r.res.ScaleEvents++
	}
}

// stopIdle stops draining connectors that have no work left; they stop being paid.
func (r *run) stopIdle(now time.Time) {
	r.conns = slices.DeleteFunc(r.conns, func(c planning.Connector) bool {
		if c.State == planning.StateDraining && len(c.Migrations) == 0 {
			r.stopped[c.ID] = now
			return true
		}
		return false
	})
}

// assign places waiting migrations with the production placement and starts their
// transfers: the policy's own placement if it has one (a Placer, as the fleet places
// between its ticks too), planning.Assign otherwise.
func (r *run) assign(now time.Time) {
	if len(r.waiting) == 0 {
		return
	}
	var got []planning.Assignment
	if placer, ok := r.policy.(Placer); ok {
		p := placer.Place(&View{Now: now, Connectors: r.conns, Waiting: r.waiting, Known: r.known, world: r.w})
		got, r.conns = p.Assignments, p.Connectors
		defer r.start(now, p.Start)
	} else {
		got, r.conns = planning.Assign(r.conns, r.waiting, nil)
	}
	for _, a := range got {
		i := r.w.index[a.MigrationID]
		r.waiting = slices.DeleteFunc(r.waiting, func(x planning.Reservation) bool { return x.MigrationID == a.MigrationID })
		r.waited[i] += now.Sub(r.since[i]).Seconds()
		r.since[i] = time.Time{}
		share := a.BandwidthBytesSec * r.w.rateFactor[i]
		took := r.remaining[i] / share
		e := event{kind: evDone, req: i, conn: a.ConnectorID}
		if f := r.w.failAt[i]; f > 0 && !r.failedYet[i] {
			// The first transfer fails having moved part of what was left.
			took *= f
			e.failed = true
			r.failedYet[i] = true
		}
		e.at = now.Add(seconds(took))
		r.push(e)
	}
}

// finish ends a transfer; it reports whether the migration is done.
func (r *run) finish(e event) bool {
	i := r.index(e.conn)
	c := &r.conns[i]
	req := r.w.Requests[e.req]
	var task planning.Task
	for _, t := range c.Migrations {
		if t.MigrationID == req.ID {
			task = t
		}
	}
	c.Migrations = slices.DeleteFunc(slices.Clone(c.Migrations), func(t planning.Task) bool { return t.MigrationID == req.ID })
	if len(c.Migrations) == 0 {
		c.IdleSince = e.at
		if c.State == planning.StateActive {
			c.State = planning.StateWarm
		}
	}
	share := task.BandwidthBytesSec * r.w.rateFactor[e.req]
	moved := r.remaining[e.req]
	if e.failed {
		moved *= r.w.failAt[e.req]
		r.res.Failures++
	}
	r.busy += moved / share
	r.remaining[e.req] -= moved
	if e.failed {
		// The connector stays healthy, so the migration may resume anywhere, itself included.
		r.waiting = append(r.waiting, planning.Reservation{MigrationID: req.ID, Site: req.Site,
			Bytes: int64(r.remaining[e.req]), Deadline: req.Deadline, RequestedAt: req.Arrival})
		r.since[e.req] = e.at
		return false
	}
	r.done[e.req] = e.at
	r.lastDone = e.at
	return true
}

// close ends the run when the last migration is done and sums it up.
func (r *run) close() {
	end := r.lastDone
	var paid float64
	for _, s := range r.starts {
		stop, ok := r.stopped[s.id]
		if !ok || stop.After(end) {
			stop = end
		}
		paid += max(stop.Sub(s.at).Seconds(), 0)
	}
	r.res.ConnectorHours = paid / 3600
	if paid > 0 {
		r.res.Utilization = r.busy / (paid * float64(r.cfg.Size.MaxTasks))
	}
	r.res.Waits = make([]float64, len(r.w.Requests))
	var all, wave, adhoc []int
	for i, req := range r.w.Requests {
		r.res.Waits[i] = r.waited[i]
		if !r.since[i].IsZero() { // unserved: it waited until the run gave up
			r.res.Waits[i] += end.Sub(r.since[i]).Seconds()
		}
		all = append(all, i)
		if req.Wave != "" {
			wave = append(wave, i)
		} else {
			adhoc = append(adhoc, i)
		}
	}
	r.res.Outcomes, r.res.Wave, r.res.Adhoc = r.outcomes(all), r.outcomes(wave), r.outcomes(adhoc)
	// The tiers the requests name, the trace's own strictest first, others by name.
	byTier := map[string][]int{}
	for i, req := range r.w.Requests {
		byTier[req.SLATier] = append(byTier[req.SLATier], i)
	}
	known := func(name string) int {
		if i := slices.IndexFunc(trace.Tiers, func(t trace.Tier) bool { return t.Name == name }); i >= 0 {
			return i
		}
		return len(trace.Tiers)
	}
	tiers := slices.SortedFunc(maps.Keys(byTier), func(a, b string) int { return cmp.Or(cmp.Compare(known(a), known(b)), cmp.Compare(a, b)) })
	for _, t := range tiers {
		r.res.Tiers = append(r.res.Tiers, TierOutcomes{Tier: t, Outcomes: r.outcomes(byTier[t])})
	}
}

// outcomes are how the requests did: breaches, and their waits' quantiles.
func (r *run) outcomes(reqs []int) Outcomes {
	o := Outcomes{Migrations: len(reqs)}
	waits := make([]float64, 0, len(reqs))
	for _, i := range reqs {
		waits = append(waits, r.res.Waits[i])
		if r.done[i].IsZero() || r.done[i].After(r.w.Requests[i].Deadline) {
			o.SLABreaches++
		}
	}
	slices.Sort(waits)
	o.WaitP50, o.WaitP95, o.WaitP99 = quantile(waits, 0.5), quantile(waits, 0.95), quantile(waits, 0.99)
	return o
}

// quantile of sorted values, by the nearest rank.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
