-- 0012_webhook_due_index: the due index without finished deliveries.

-- The due index holds only deliveries still to attempt: a finished one
-- (success, failed) leaves it, so finishing a delivery no longer inserts
-- into it, and the sweep's index stays as small as the backlog.
DROP INDEX revops_webhook_deliveries_due_idx;
CREATE INDEX revops_webhook_deliveries_due_idx ON revops_webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'retrying');

-- Room on each page for a claim's new row version, so that the claim (it
-- changes no indexed column) is a HOT update: no index entries, and less
-- index churn to clean up. Every delivery is updated twice soon after it
-- is inserted, so the pages end up no emptier than with full pages.
{{postgres_only}} ALTER TABLE revops_webhook_deliveries SET (fillfactor = 50);
