-- Storage extras that only newer servers have. Each statement carries a version gate;
-- on an older server (the Debian 18.16 build) it is skipped and the plain column stays.

-- @requires version >= 20.3
ALTER TABLE ${db}.rejects MODIFY TTL rejected_at + INTERVAL 90 DAY;

-- @requires version >= 20.3
ALTER TABLE ${db}.posts MODIFY COLUMN text String CODEC(ZSTD(3));

-- @requires version >= 20.3
ALTER TABLE ${db}.rejects MODIFY COLUMN raw_b64 String CODEC(ZSTD(3));

-- @requires version >= 20.3
ALTER TABLE ${db}.posts MODIFY COLUMN platform LowCardinality(String);

-- @requires version >= 20.3
ALTER TABLE ${db}.posts MODIFY COLUMN lang LowCardinality(String);
