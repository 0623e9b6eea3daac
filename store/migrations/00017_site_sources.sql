-- +goose Up
-- Where each site's disks may be read: absolute folders ending in "/" and http(s) URL
-- prefixes ending in "/" (package sources). A migration whose source is outside its
-- site's list is refused, and a connector reads nothing outside it.
ALTER TABLE sites ADD COLUMN sources text[] NOT NULL DEFAULT '{}';
-- Sites that already have VMs allow the folders (or URL folders) their disks are in,
-- so that what migrated before still does. A disk_uri with a "." or ".." segment, a
-- user, query or fragment, or in the root folder, gives none, and a site whose disks
-- are in more than 64 folders (a list's limit) gets none: those have to be declared.
UPDATE sites s SET sources = coalesce((
    SELECT CASE WHEN count(DISTINCT root) <= 64 THEN array_agg(DISTINCT root ORDER BY root) END FROM (
        SELECT regexp_replace(regexp_replace(v.disk_uri, '^file://(localhost)?', ''), '[^/]*$', '') AS root
        FROM vms v WHERE v.site_id = s.id AND v.disk_uri <> ''
    ) r
    WHERE (root ~ '^/[^/]' OR root ~ '^https?://[^/@?#]+/') AND root !~ '/\.{1,2}/' AND root !~ '[?#]'
), '{}');

-- +goose Down
ALTER TABLE sites DROP COLUMN sources;
