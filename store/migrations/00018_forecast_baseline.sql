-- +goose Up
-- Each forecast hour keeps the band of the plainest forecast beside its own: each hour
-- of day's mean over the last four weeks, as a Poisson rate, at the same quantiles
-- (ad-hoc arrivals, as adhoc_lo and adhoc_hi). Once the hour has passed, both bands'
-- pinball losses tell whether the forecast has skill over it. Forecasts stored
-- before have none, and are left out of that comparison.
ALTER TABLE forecasts
    ADD COLUMN baseline_lo double precision CHECK (baseline_lo >= 0),
    ADD COLUMN baseline_hi double precision CHECK (baseline_hi >= 0);

-- +goose Down
ALTER TABLE forecasts DROP COLUMN baseline_lo, DROP COLUMN baseline_hi;
