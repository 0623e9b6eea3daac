-- +goose Up
-- What the connector a migration ran on could move: its whole bandwidth. The rate
-- model learns how the connector's size bears on a migration's rate. NULL where the
-- connector is not known (history imported without it).
ALTER TABLE migrations ADD COLUMN connector_bandwidth_bytes_per_sec double precision
    CHECK (connector_bandwidth_bytes_per_sec > 0);

-- What a connector measures beside CPU, RAM and bandwidth: the bytes it holds for
-- transfers not yet cut over, the free bytes of the target storage it writes to, and
-- how long its reads from the VMs' disks took (NULL where it read nothing). Placement
-- and the target-storage bottleneck use them; the resource model is fitted on them.
ALTER TABLE connector_metrics
    ADD COLUMN storage_used_bytes   bigint NOT NULL DEFAULT 0 CHECK (storage_used_bytes >= 0),
    ADD COLUMN target_free_bytes    bigint CHECK (target_free_bytes >= 0),
    ADD COLUMN read_latency_seconds double precision CHECK (read_latency_seconds >= 0);

-- +goose Down
ALTER TABLE connector_metrics
    DROP COLUMN storage_used_bytes, DROP COLUMN target_free_bytes, DROP COLUMN read_latency_seconds;
ALTER TABLE migrations DROP COLUMN connector_bandwidth_bytes_per_sec;
