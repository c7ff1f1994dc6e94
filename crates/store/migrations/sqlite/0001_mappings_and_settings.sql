-- The Node backend's two tables (pagerduty_entity_mapping,
-- pagerduty_settings), in snake_case. One service maps to at most one
-- entity (service_id unique: an upsert replaces the row); one entity may be
-- mapped from several services (entity_ref is indexed, not unique).
CREATE TABLE IF NOT EXISTS pagerduty_entity_mapping (
    idx             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    service_id      TEXT    NOT NULL UNIQUE,
    integration_key TEXT,
    entity_ref      TEXT    NOT NULL,
    account         TEXT    NOT NULL DEFAULT '',
    processed_at_ms INTEGER NOT NULL,
    -- bumped by every write of the row: later jobs (auto-match, custom-field
    -- sync) can compare-and-set on it
    revision        INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS entity_mapping_entity_ref_idx
    ON pagerduty_entity_mapping (entity_ref, account);

CREATE TABLE IF NOT EXISTS pagerduty_settings (
    id         TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
