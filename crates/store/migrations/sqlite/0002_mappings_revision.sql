-- One counter for the whole mapping table: bumped by every row a statement
-- inserts, updates or deletes, inside that statement's transaction (a
-- trigger, so no write path can forget it, and a rolled-back write leaves
-- it unchanged). A reader that finds the revision it saw before knows no
-- row changed since, on any replica, without reading the rows.
CREATE TABLE IF NOT EXISTS pagerduty_mappings_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO pagerduty_mappings_revision (id, revision) VALUES (1, 0)
    ON CONFLICT (id) DO NOTHING;

CREATE TRIGGER IF NOT EXISTS pagerduty_entity_mapping_inserted
    AFTER INSERT ON pagerduty_entity_mapping
BEGIN
    UPDATE pagerduty_mappings_revision SET revision = revision + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS pagerduty_entity_mapping_updated
    AFTER UPDATE ON pagerduty_entity_mapping
BEGIN
    UPDATE pagerduty_mappings_revision SET revision = revision + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS pagerduty_entity_mapping_deleted
    AFTER DELETE ON pagerduty_entity_mapping
BEGIN
    UPDATE pagerduty_mappings_revision SET revision = revision + 1 WHERE id = 1;
END;
