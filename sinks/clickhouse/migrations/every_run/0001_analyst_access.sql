-- Applied by EVERY `yuqing db migrate`, not recorded: the analyst's password, read-only
-- settings profile and query limits follow the settings on each run (a changed password
-- takes effect). Servers before 20.5 have no SQL access management: there users.xml
-- (sinks/clickhouse/server_config.py) carries the same profile and limits. On newer
-- servers the admin user needs access management (e.g. the official image's
-- CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1).

-- @requires version >= 20.5
CREATE SETTINGS PROFILE IF NOT EXISTS ${analyst_profile} SETTINGS readonly = 1;

-- @requires version >= 20.5
ALTER SETTINGS PROFILE ${analyst_profile} SETTINGS ${analyst_limits};

-- @requires version >= 20.5
CREATE USER IF NOT EXISTS ${analyst_user} IDENTIFIED WITH sha256_password BY ${analyst_password};

-- @requires version >= 20.5
ALTER USER ${analyst_user} IDENTIFIED WITH sha256_password BY ${analyst_password} SETTINGS PROFILE ${analyst_profile_name};

-- @requires version >= 20.5
REVOKE ALL ON *.* FROM ${analyst_user};

-- @requires version >= 20.5
GRANT SELECT ON ${db}.* TO ${analyst_user};
