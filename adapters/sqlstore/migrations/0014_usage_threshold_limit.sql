-- 0014_usage_threshold_limit: a threshold is marked once per limit.
--
-- A workspace that upgrades mid-period has a new limit, and reaching 80%
-- of it is news again; the mark was once per period and percent, so the
-- notice of the new limit was lost. Marks made before carry limit 0, which
-- MarkThreshold reads as "this percent was announced this period" (so the
-- upgrade does not announce again what was announced before it).
CREATE TABLE revops_usage_thresholds_new (
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    feature TEXT NOT NULL,
    period_start {{timestamp}} NOT NULL,
    percent INTEGER NOT NULL,
    lim BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, feature, period_start, percent, lim)
);
INSERT INTO revops_usage_thresholds_new (workspace_id, feature, period_start, percent, lim)
SELECT workspace_id, feature, period_start, percent, 0 FROM revops_usage_thresholds;
DROP TABLE revops_usage_thresholds;
ALTER TABLE revops_usage_thresholds_new RENAME TO revops_usage_thresholds;
{{postgres_only}} ALTER TABLE revops_usage_thresholds RENAME CONSTRAINT revops_usage_thresholds_new_pkey TO revops_usage_thresholds_pkey;
{{postgres_only}} ALTER TABLE revops_usage_thresholds RENAME CONSTRAINT revops_usage_thresholds_new_workspace_id_fkey TO revops_usage_thresholds_workspace_id_fkey;
