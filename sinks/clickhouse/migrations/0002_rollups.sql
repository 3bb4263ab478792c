-- Hourly rollups by brand, category and platform, fed by a materialized view on `posts`.
-- The view sees every INSERT block, not the deduplicated table, so the writer inserts a
-- post only if its id is not stored yet (sinks/clickhouse/writer.py); see docs/clickhouse.md.

CREATE TABLE IF NOT EXISTS ${db}.posts_hourly
(
    hour DateTime('Asia/Shanghai'),
    brand String,
    category String,
    platform String,
    posts_state AggregateFunction(count),
    negative_state AggregateFunction(sum, UInt64),
    authors_state AggregateFunction(uniq, String),
    reach_state AggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(hour)
ORDER BY (brand, category, platform, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.posts_hourly_mv TO ${db}.posts_hourly
AS SELECT
    toStartOfHour(published_at) AS hour,
    brand,
    category,
    platform,
    countState() AS posts_state,
    sumState(toUInt64(negative)) AS negative_state,
    uniqState(author_id) AS authors_state,
    sumState(followers) AS reach_state
FROM ${db}.posts
ARRAY JOIN match_brands AS brand, match_categories AS category
GROUP BY hour, brand, category, platform;

-- The merged numbers, ready for Grafana and ad-hoc queries.
CREATE VIEW IF NOT EXISTS ${db}.posts_hourly_v
AS SELECT
    hour,
    brand,
    category,
    platform,
    countMerge(posts_state) AS posts,
    sumMerge(negative_state) AS negative_posts,
    negative_posts / posts AS negative_share,
    uniqMerge(authors_state) AS unique_authors,
    sumMerge(reach_state) AS reach
FROM ${db}.posts_hourly
GROUP BY hour, brand, category, platform;

-- One row per alert with its response clock (NULL until acknowledged / resolved).
CREATE VIEW IF NOT EXISTS ${db}.alert_clock
AS SELECT
    alert_id,
    brand,
    category,
    top_level,
    first_detected_at,
    acked_by,
    acked_at,
    resolved_at
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
        if(countIf(action = 'resolved') > 0, minIf(at, action = 'resolved'), NULL) AS resolved_at
    FROM ${db}.alert_actions
    GROUP BY alert_id
) USING alert_id;
