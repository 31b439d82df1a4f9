-- 0015_audit_actor_index: a user's own trail (GET /user/audit/events, and
-- the actor= filter of a workspace's) reads by actor, without scanning
-- every event of the workspace (outside any workspace: every user's).
CREATE INDEX revops_audit_events_actor_idx ON revops_audit_events (workspace_id, actor_kind, actor_id, id);
