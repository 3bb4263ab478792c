-- The read-only analyst account. Servers before 20.5 have no SQL user management: there
-- the account comes from users.xml (sinks/clickhouse/server_config.py, readonly profile).
-- On newer servers the admin user needs access management (e.g. the official image's
-- CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1).

-- @requires version >= 20.5
CREATE USER IF NOT EXISTS ${analyst_user} IDENTIFIED WITH sha256_password BY ${analyst_password};

-- @requires version >= 20.5
GRANT SELECT ON ${db}.* TO ${analyst_user};
