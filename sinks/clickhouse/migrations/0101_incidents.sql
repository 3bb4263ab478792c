-- Incidents (scoring/incidents.py, issue #22): an `alerts` record now belongs to a brand's
-- incident. `alert_id` of a new record carries the incident id (the response clock, the
-- reminders and alert_response_times follow the incident); the key's own episode id moves
-- to key_alert_id. Old rows keep their key-level alert_id and read '' / 'low' / '[]' here.
-- 18.x has no ADD COLUMN IF NOT EXISTS (the migration runs once there, recorded); newer
-- servers get IF NOT EXISTS, so the k8s DDL job can run again.
-- Adding Enum8 values is a metadata-only change, also for `event`, part of the sort key.
-- Rows of one incident with the same event, level and minute (two categories rising
-- together) may merge into one: every record carries the whole `categories` list, and
-- counts of incidents use uniqExact(incident_id), not rows.
ALTER TABLE ${db}.alerts
    MODIFY COLUMN event Enum8('raised' = 1, 'lowered' = 2, 'closed' = 3);

-- @requires version < 19
ALTER TABLE ${db}.alerts
    ADD COLUMN incident_id String DEFAULT '';
-- @requires version >= 19
ALTER TABLE ${db}.alerts
    ADD COLUMN IF NOT EXISTS incident_id String DEFAULT '';

-- @requires version < 19
ALTER TABLE ${db}.alerts
    ADD COLUMN kind Enum8('' = 0, 'opened' = 1, 'escalated' = 2, 'updated' = 3, 'lowered' = 4, 'closed' = 5) DEFAULT '';
-- @requires version >= 19
ALTER TABLE ${db}.alerts
    ADD COLUMN IF NOT EXISTS kind Enum8('' = 0, 'opened' = 1, 'escalated' = 2, 'updated' = 3, 'lowered' = 4, 'closed' = 5) DEFAULT '';

-- @requires version < 19
ALTER TABLE ${db}.alerts
    ADD COLUMN key_alert_id String DEFAULT '';
-- @requires version >= 19
ALTER TABLE ${db}.alerts
    ADD COLUMN IF NOT EXISTS key_alert_id String DEFAULT '';

-- @requires version < 19
ALTER TABLE ${db}.alerts
    ADD COLUMN incident_level Enum8('low' = 1, 'medium' = 2, 'high' = 3) DEFAULT 'low';
-- @requires version >= 19
ALTER TABLE ${db}.alerts
    ADD COLUMN IF NOT EXISTS incident_level Enum8('low' = 1, 'medium' = 2, 'high' = 3) DEFAULT 'low';

-- the incident's (category, level) pairs as JSON, e.g. [{"category":"privacy","level":"high"}]
-- @requires version < 19
ALTER TABLE ${db}.alerts
    ADD COLUMN categories String DEFAULT '[]';
-- @requires version >= 19
ALTER TABLE ${db}.alerts
    ADD COLUMN IF NOT EXISTS categories String DEFAULT '[]';
