-- One counter for the whole mapping table: bumped by every row a statement
-- inserts, updates or deletes, inside that statement's transaction (a
-- trigger, so no write path can forget it, and a rolled-back write leaves
-- it unchanged). A reader that finds the revision it saw before knows no
-- row changed since, on any replica, without reading the rows. Row-level,
-- like SQLite's: an `ON CONFLICT DO NOTHING` that writes nothing, or a
-- delete that finds nothing, does not move it.
CREATE TABLE IF NOT EXISTS pagerduty_mappings_revision (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO pagerduty_mappings_revision (id, revision) VALUES (1, 0)
    ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION pagerduty_mappings_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pagerduty_mappings_revision SET revision = revision + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS pagerduty_entity_mapping_revision ON pagerduty_entity_mapping;
CREATE TRIGGER pagerduty_entity_mapping_revision
    AFTER INSERT OR UPDATE OR DELETE ON pagerduty_entity_mapping
    FOR EACH ROW EXECUTE FUNCTION pagerduty_mappings_bump();
