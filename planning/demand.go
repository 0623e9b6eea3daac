package planning

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/pmo-dev/pmo/forecast"
)

// HourlyPeriod is the seasonal period of hourly series: a day. Models that take
// several seasons add the week.
const HourlyPeriod = 24

// ArrivalsModel is the model the fleet forecasts each site's hourly arrivals with
// where none is named: they are small counts, often none in an hour, and `count`
// forecasts their rate, with quantiles calibrated out of sample (docs/forecasting.md).
// Bytes are not counts, and take the engine's default.
const ArrivalsModel = "count"

// DemandQuantiles are the quantiles the fleet plans with; planning interpolates between
// them for each SLA tier (see Demand.adhocAt).
var DemandQuantiles = []float64{0.1, 0.9}

// DemandInput is the hourly history of each site and the known work to come, from
// which ForecastDemand builds the demand curve.
type DemandInput struct {
	Sites []string
	// Arrivals and Bytes are each site's migrations started and bytes moved per hour,
	// oldest first, the last whole hour ending at Now's hour.
	Arrivals, Bytes [][]float64
	Now             time.Time
	// From is the first hour to forecast (Now's hour if earlier), Hours how many.
	From  time.Time
	Hours int
	// Planned is known work: it counts as it is, in the hour it starts.
	Planned []PlannedMigration
	// Model is the forecasting engine's model for arrivals and bytes alike; empty
	// means ArrivalsModel for arrivals and forecast.DefaultModel for bytes.
	Model string
	// OnSite, if set, is told of each site as its forecast is done: progress for long
	// forecasts.
	OnSite func(site string)
}

// ForecastDemand builds the demand curve: known planned migrations as they are, plus a
// forecast of ad-hoc arrivals and of the bytes they bring with the forecasting
// engine, falling back to simpler models where the history is too short. Global
// models learn from every site's series at once. It returns the demand per site and
// hour, and each site's model as "site model".
func ForecastDemand(in DemandInput) ([]Demand, []string, error) {
	now := in.Now.Truncate(time.Hour)
	from := in.From.Truncate(time.Hour)
	if from.Before(now) {
		from = now
	}
	// skip is how many forecast steps lie between now and the first hour asked for.
	skip := int(from.Sub(now) / time.Hour)
	arrivalsModel, bytesModel := cmp.Or(in.Model, ArrivalsModel), cmp.Or(in.Model, forecast.DefaultModel)
	newArrivals, err := forecast.Prepare(arrivalsModel, in.Arrivals, HourlyPeriod, skip+in.Hours)
	if err != nil {
		return nil, nil, err
	}
	newBytes, err := forecast.Prepare(bytesModel, in.Bytes, HourlyPeriod, skip+in.Hours)
	if err != nil {
		return nil, nil, err
	}
	var demand []Demand
	models := make([]string, len(in.Sites))
	for i, site := range in.Sites {
		baseline := hourOfDayRates(in.Arrivals[i], now)
		n, err := forecastSeries(newArrivals(HourlyPeriod), in.Arrivals[i], skip+in.Hours)
		if err != nil {
			return nil, nil, fmt.Errorf("forecast arrivals at %s: %w", site, err)
		}
		b, err := forecastSeries(newBytes(HourlyPeriod), in.Bytes[i], skip+in.Hours)
		if err != nil {
			return nil, nil, fmt.Errorf("forecast volume at %s: %w", site, err)
		}
		models[i] = site + " " + n.model
		for h := range in.Hours {
			hour := from.Add(time.Duration(h) * time.Hour)
			rate := baseline[hour.UTC().Hour()]
			demand = append(demand, Demand{Site: site, Hour: hour, Model: n.model, Fallback: n.fallback,
				AdhocMean: n.mean[skip+h], AdhocLo: n.lo[skip+h], AdhocHi: n.hi[skip+h],
				AdhocBytesMean: b.mean[skip+h], AdhocBytesLo: b.lo[skip+h], AdhocBytesHi: b.hi[skip+h],
				BaselineLo: forecast.CountQuantile(rate, 0, DemandQuantiles[0]), BaselineHi: forecast.CountQuantile(rate, 0, DemandQuantiles[1])})
		}
		if in.OnSite != nil {
			in.OnSite(site)
		}
	}
	return WithPlanned(demand, in.Planned), models, nil
}

// BaselineWeeks is how far back the hour-of-day baseline averages: four weeks.
const BaselineWeeks = 4

// hourOfDayRates are a site's arrivals per hour of day (UTC): the mean of each hour of
// day over the last BaselineWeeks weeks of y, whose last hour ends at end. Hours of
// day the history does not reach have no arrivals.
func hourOfDayRates(y []float64, end time.Time) [24]float64 {
	var sum, n [24]float64
	first := max(len(y)-BaselineWeeks*7*24, 0)
	for k := first; k < len(y); k++ {
		hod := end.Add(time.Duration(k-len(y)) * time.Hour).UTC().Hour()
		if !math.IsNaN(y[k]) {
			sum[hod], n[hod] = sum[hod]+y[k], n[hod]+1
		}
	}
	var rates [24]float64
	for h := range rates {
		if n[h] > 0 {
			rates[h] = sum[h] / n[h]
		}
	}
	return rates
}

// WithPlanned is the demand with the known work counted as it is, in the hour it
// starts, at its site; it replaces what the demand counted of known work before.
func WithPlanned(demand []Demand, planned []PlannedMigration) []Demand {
	type siteHour struct {
		site string
		hour int64
	}
	type known struct{ n, bytes float64 }
	byHour := make(map[siteHour]known, len(planned))
	for _, p := range planned {
		k := siteHour{p.Site, p.EarliestStart.Truncate(time.Hour).Unix()}
		byHour[k] = known{byHour[k].n + 1, byHour[k].bytes + float64(p.Bytes)}
	}
	demand = slices.Clone(demand)
	for i := range demand {
		k := byHour[siteHour{demand[i].Site, demand[i].Hour.Unix()}]
		demand[i].Planned, demand[i].PlannedBytes = k.n, k.bytes
	}
	return demand
}

// seriesForecast is one series' forecast at the planning quantiles.
type seriesForecast struct {
	mean, lo, hi    []float64
	model, fallback string
}

// forecastSeries forecasts h hours of a non-negative hourly series with model, falling
// back to simpler ones where the history is too short (as `starter forecast -model
// fleet` does). Counts and bytes cannot be negative, so the forecast is clipped at zero.
func forecastSeries(model forecast.Model, y []float64, h int) (seriesForecast, error) {
	f := &forecast.Fallback{Primary: model, Period: HourlyPeriod, NonNegative: true}
	if err := f.Fit(y); err != nil {
		return seriesForecast{}, err
	}
	fc, err := f.Forecast(h, DemandQuantiles)
	if err != nil {
		return seriesForecast{}, err
	}
	out := seriesForecast{mean: clipAtZero(fc.Mean), lo: clipAtZero(fc.Values[0]), hi: clipAtZero(fc.Values[1]), model: f.Used}
	if f.Reason != nil {
		out.fallback = f.Reason.Error()
	}
	return out, nil
}

func clipAtZero(v []float64) []float64 {
	for i := range v {
		v[i] = max(v[i], 0)
	}
	return v
}
