-- +goose Up
-- Forecasts carry the volume forecast beside the arrivals, the quantile levels of the
-- band, and, once the hour has passed, what really arrived: so the realised error of
-- every pool's forecasts is known.
ALTER TABLE forecasts
    ADD COLUMN lo_level      double precision NOT NULL DEFAULT 0.1 CHECK (lo_level > 0 AND lo_level < 1),
    ADD COLUMN hi_level      double precision NOT NULL DEFAULT 0.9 CHECK (hi_level > 0 AND hi_level < 1),
    ADD COLUMN bytes_mean    double precision NOT NULL DEFAULT 0 CHECK (bytes_mean >= 0),
    ADD COLUMN bytes_lo      double precision NOT NULL DEFAULT 0 CHECK (bytes_lo >= 0),
    ADD COLUMN bytes_hi      double precision NOT NULL DEFAULT 0 CHECK (bytes_hi >= 0),
    ADD COLUMN fallback      text NOT NULL DEFAULT '',
    ADD COLUMN actual_arrivals double precision CHECK (actual_arrivals >= 0),
    ADD COLUMN actual_bytes    double precision CHECK (actual_bytes >= 0);
-- The forecasts whose hour has passed but that are not scored yet.
CREATE INDEX forecasts_unscored_idx ON forecasts (pool, target_hour) WHERE actual_arrivals IS NULL;

-- +goose Down
DROP INDEX forecasts_unscored_idx;
ALTER TABLE forecasts
    DROP COLUMN lo_level, DROP COLUMN hi_level, DROP COLUMN bytes_mean, DROP COLUMN bytes_lo,
    DROP COLUMN bytes_hi, DROP COLUMN fallback, DROP COLUMN actual_arrivals, DROP COLUMN actual_bytes;
