package forecast

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Job is one series to forecast in a batch.
type Job struct {
	Y      []float64
	Period int
}

// Result is one series' forecast from a batch.
type Result struct {
	Forecast Forecast
	// Model is the model that answered, after fallbacks.
	Model string
	// Members are the members a combination chose, best first; nil for other models.
	Members []string
	// Fallback is why the asked-for model did not answer, nil when it did.
	Fallback error
	// Elapsed is the time to fit and forecast.
	Elapsed time.Duration
}

// Batch fits and forecasts many series on a number of workers. Each series gets a fresh
// model from NewModel, wrapped in a Fallback, so every series gets a finite forecast.
type Batch struct {
	// NewModel returns a fresh model for a series with the given period.
	NewModel func(period int) Model
	// Horizon is how many steps to forecast.
	Horizon int
	// Quantiles are the levels to forecast besides the mean.
	Quantiles []float64
	// Workers is how many series are fitted at once; at least 1.
	Workers int
	// NonNegative clips the fallbacks' forecasts at zero, for counts (Fallback).
	NonNegative bool
	// Progress, if set, is called after each series with how many are done. It is
	// called from the workers, one call at a time.
	Progress func(done int)
}

// Run forecasts every job. Results are in the order of the jobs. It stops early when
// ctx ends, and returns an error only then or for non-finite data, as a *JobError.
func (b Batch) Run(ctx context.Context, jobs []Job) ([]Result, error) {
	if b.Horizon < 1 {
		panic("forecast: horizon must be at least 1")
	}
	out := make([]Result, len(jobs))
	errs := make([]error, len(jobs))
	var next, done atomic.Int64
	var progress sync.Mutex
	var wg sync.WaitGroup
	for range max(b.Workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) || ctx.Err() != nil {
					return
				}
				out[i], errs[i] = b.one(jobs[i])
				if b.Progress != nil {
					progress.Lock()
					b.Progress(int(done.Add(1)))
					progress.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, err := range errs {
		if err != nil {
			return out, &JobError{Index: i, Err: err}
		}
	}
	return out, nil
}

func (b Batch) one(j Job) (Result, error) {
	start := time.Now()
	f := &Fallback{Primary: b.NewModel(j.Period), Period: j.Period, NonNegative: b.NonNegative}
	if err := f.Fit(j.Y); err != nil {
		return Result{}, err
	}
	fc, err := f.Forecast(b.Horizon, b.Quantiles)
	if err != nil {
		return Result{}, err
	}
	r := Result{Forecast: fc, Model: f.Used, Fallback: f.Reason, Elapsed: time.Since(start)}
	if c, ok := f.Active().(*Combination); ok {
		r.Members = c.Chosen()
	}
	return r, nil
}

// JobError is a batch job's failure; Index is the job's position.
type JobError struct {
	Index int
	Err   error
}

func (e *JobError) Error() string { return fmt.Sprintf("series %d: %v", e.Index+1, e.Err) }

// Unwrap returns the model's error.
func (e *JobError) Unwrap() error { return e.Err }
