-- The response clock (sinks/response, `yuqing ack|resolve|remind`): reminders sent to
-- on-call before each deadline are recorded in `alert_actions` as action 'reminded', with
-- note 'reminder:<deadline name>', so each reminder goes out once. Adding an Enum8 value
-- is a metadata-only change (also on 18.16, where `action` is part of the sort key).
ALTER TABLE ${db}.alert_actions
    MODIFY COLUMN action Enum8('acked' = 1, 'resolved' = 2, 'escalated' = 3, 'noted' = 4, 'reminded' = 5);

-- Response times per alert for the weekly report and ad-hoc queries: seconds from first
-- detection to the first ack / resolve (NULL while not done), reminders sent so far.
CREATE VIEW IF NOT EXISTS ${db}.alert_response_times
AS SELECT
    alert_id,
    brand,
    category,
    top_level,
    first_detected_at,
    acked_by,
    acked_at,
    resolved_at,
    if(acked_at IS NULL, NULL, toInt64(acked_at) - toInt64(first_detected_at)) AS ack_seconds,
    if(resolved_at IS NULL, NULL, toInt64(resolved_at) - toInt64(first_detected_at)) AS resolve_seconds,
    reminders
FROM
(
    SELECT
        alert_id,
        any(brand) AS brand,
        any(category) AS category,
        max(level) AS top_level,
        min(first_detected_at) AS first_detected_at
    FROM ${db}.alerts
    GROUP BY alert_id
)
ANY LEFT JOIN
(
    SELECT
        alert_id,
        if(countIf(action = 'acked') > 0, argMinIf(actor, at, action = 'acked'), NULL) AS acked_by,
        if(countIf(action = 'acked') > 0, minIf(at, action = 'acked'), NULL) AS acked_at,
        if(countIf(action = 'resolved') > 0, minIf(at, action = 'resolved'), NULL) AS resolved_at,
        countIf(action = 'reminded') AS reminders
    FROM ${db}.alert_actions
    GROUP BY alert_id
) USING alert_id;
