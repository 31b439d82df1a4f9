-- 0013_webhook_event_fk: on PostgreSQL, deliveries no longer reference
-- their event by a foreign key, nor index event_id.
--
-- Nothing looks deliveries up by event (a claim joins each delivery to its
-- event by the event's key), and events are only ever deleted with their
-- workspace, whose cascade deletes the deliveries too. The index cost an
-- entry per delivery published and per delivery finished (the finish is
-- not a HOT update), about 4 us a delivery, and the key a lookup of the
-- event per delivery published. Publishing writes the event and its
-- deliveries in one statement, so none can name a missing event. SQLite
-- keeps both (dropping a foreign key there means rebuilding the table).
{{postgres_only}} ALTER TABLE revops_webhook_deliveries DROP CONSTRAINT revops_webhook_deliveries_event_id_fkey;
{{postgres_only}} DROP INDEX revops_webhook_deliveries_event_id_idx;
