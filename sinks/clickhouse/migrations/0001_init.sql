-- Base tables. `${db}` is replaced by settings.clickhouse.database.
-- Every table is a ReplacingMergeTree on its natural key, so a replayed or retried insert
-- leaves one row per key after merges; analysts read with FINAL or argMax (docs/clickhouse.md).
-- All times are DateTime('Asia/Shanghai'); tables are partitioned by (China) day.

CREATE TABLE IF NOT EXISTS ${db}.posts
(
    id String,
    platform String,
    brands Array(String),
    categories Array(String),
    -- the matched (brand, category) pairs, as two parallel arrays (ARRAY JOIN both)
    match_brands Array(String),
    match_categories Array(String),
    author_id String,
    author_name String,
    author_kind Enum8('user' = 1, 'kol' = 2, 'media' = 3, 'official' = 4),
    followers UInt64,
    verified UInt8,
    text String,
    title String,
    url String,
    lang String,
    repost_of String,
    source String,
    sentiment Float32,
    negative UInt8,
    reposts UInt64,
    comments UInt64,
    likes UInt64,
    views UInt64,
    published_at DateTime('Asia/Shanghai'),
    ingested_at DateTime('Asia/Shanghai'),
    inserted_at DateTime('Asia/Shanghai') DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMMDD(published_at)
ORDER BY id;

CREATE TABLE IF NOT EXISTS ${db}.risk_assessments
(
    brand String,
    category String,
    window_start DateTime('Asia/Shanghai'),
    window_end DateTime('Asia/Shanghai'),
    posts UInt32,
    negative_ratio Float32,
    influence Float32,
    severity Float32,
    volatility Float32,
    risk_score Float32,
    level Enum8('low' = 1, 'medium' = 2, 'high' = 3),
    first_detected_at Nullable(DateTime('Asia/Shanghai')),
    computed_at DateTime('Asia/Shanghai'),
    inserted_at DateTime('Asia/Shanghai') DEFAULT now()
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (brand, category, window_start, window_end);

CREATE TABLE IF NOT EXISTS ${db}.alerts
(
    alert_id String,
    event Enum8('raised' = 1, 'lowered' = 2),
    brand String,
    category String,
    level Enum8('low' = 1, 'medium' = 2, 'high' = 3),
    previous_level Enum8('low' = 1, 'medium' = 2, 'high' = 3),
    at DateTime('Asia/Shanghai'),
    first_detected_at DateTime('Asia/Shanghai'),
    window_start DateTime('Asia/Shanghai'),
    window_end DateTime('Asia/Shanghai'),
    posts UInt32,
    negative_ratio Float32,
    influence Float32,
    severity Float32,
    volatility Float32,
    risk_score Float32,
    playbook_title String,
    playbook_owner String,
    first_deadline_at Nullable(DateTime('Asia/Shanghai')),
    -- the nested parts of the alert record, verbatim as JSON (read with visitParamExtract*)
    examples String,
    playbook String,
    deadlines String,
    inserted_at DateTime('Asia/Shanghai') DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMMDD(at)
ORDER BY (alert_id, event, level, at);

-- The response clock: who acknowledged / resolved an alert and when (append-only).
CREATE TABLE IF NOT EXISTS ${db}.alert_actions
(
    alert_id String,
    action Enum8('acked' = 1, 'resolved' = 2, 'escalated' = 3, 'noted' = 4),
    actor String,
    at DateTime('Asia/Shanghai'),
    note String,
    inserted_at DateTime('Asia/Shanghai') DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMMDD(at)
ORDER BY (alert_id, action, at);

-- Dead letters (topic posts.dlq and records the sink itself could not store).
CREATE TABLE IF NOT EXISTS ${db}.rejects
(
    reject_id String,
    reason String,
    raw String,
    raw_b64 String,
    stage String,
    source String,
    topic String,
    kafka_partition Nullable(Int32),
    kafka_offset Nullable(Int64),
    rejected_at DateTime('Asia/Shanghai'),
    inserted_at DateTime('Asia/Shanghai') DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMMDD(rejected_at)
ORDER BY reject_id;
