-- +goose Up
-- Whether a migration was known work (a batch planned through POST /forecast) rather
-- than an ad-hoc arrival. The forecast of ad-hoc arrivals counts only the ad-hoc ones:
-- planned work enters the demand as it is, and counting a wave again as arrivals
-- would echo it in the next day's forecast.
ALTER TABLE migrations ADD COLUMN planned boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE migrations DROP COLUMN planned;
