"""Migrations parsing, server config and query formatting (pure)."""
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from sinks.clickhouse import migrate, query, server_config
from core.config import ConfigError, Settings


def test_split_statements_gates_quotes_and_comments():
    sql = """-- header; not a statement
CREATE TABLE a (x String DEFAULT 'a;b');
-- @requires version >= 20.3
ALTER TABLE a MODIFY TTL x;
-- @requires version < 19
SELECT 1;
"""
    stmts = migrate.split_statements(sql, "t.sql")
    assert [s.sql.split()[0] for s in stmts] == ["CREATE", "ALTER", "SELECT"]
    assert "'a;b'" in stmts[0].sql
    assert stmts[0].applies_to((18, 16, 1))
    assert not stmts[1].applies_to((18, 16, 1)) and stmts[1].applies_to((25, 8, 0))
    assert stmts[2].applies_to((18, 16, 1)) and not stmts[2].applies_to((19, 0, 0))


@pytest.mark.parametrize("sql,msg", [
    ("SELECT 1", "lacks its closing"),
    ("-- @requires version >= 20.3\n", "gate without a statement"),
    ("-- @requires versions 20\nSELECT 1;", "bad gate"),
    ("SELECT 'x;", "unterminated quote"),
])
def test_split_statements_errors(sql, msg):
    with pytest.raises(migrate.MigrationError, match=msg):
        migrate.split_statements(sql, "t.sql")


def test_shipped_migrations_load_in_order_with_unique_versions():
    migs = migrate.load_migrations()
    assert [m.version for m in migs] == sorted({m.version for m in migs})
    assert migs[0].version == 1 and all(len(m.checksum) == 64 for m in migs)
    # every statement renders with the default settings: no unknown placeholders
    ch = replace(Settings().clickhouse, analyst_password="pw")
    for s in [s for m in migs for s in m.statements] + migrate.load_every_run():
        assert "${" not in migrate.render(s.sql, ch)
    # without a password (none set, none generated) nothing is rendered with an empty one
    with pytest.raises(migrate.MigrationError, match="analyst_password is empty"):
        migrate.render("ALTER USER a IDENTIFIED BY ${analyst_password}", Settings().clickhouse)


class RecordingClient:
    """Stands in for the connection only to see which access statements a version gets."""

    def __init__(self):
        self.sql = []

    def execute(self, sql, *args, **kw):
        self.sql.append(sql)
        return []


def test_every_run_access_statements_by_server_version():
    ch = replace(Settings().clickhouse, analyst_password="it's-新")
    modern = RecordingClient()
    message = migrate.apply_access(modern, ch, (25, 8, 0))
    assert "profile yuqing_analyst applied" in message
    text = "\n".join(modern.sql)
    # the password and the profile are applied with ALTER on every run, after the IF NOT EXISTS creates
    assert modern.sql.index(next(q for q in modern.sql if q.startswith("CREATE USER IF NOT EXISTS analyst"))) < \
        modern.sql.index(next(q for q in modern.sql if q.startswith("ALTER USER analyst IDENTIFIED WITH sha256_password BY 'it\\'s-新'")))
    assert "SETTINGS PROFILE 'yuqing_analyst'" in text and "readonly = 1" in text
    assert "max_execution_time = 120" in text and "result_overflow_mode = 'throw'" in text
    assert "REVOKE ALL ON *.* FROM analyst" in text and "GRANT SELECT ON yuqing.* TO analyst" in text
    old = RecordingClient()
    assert "users.xml" in migrate.apply_access(old, ch, (18, 16, 1))
    assert old.sql == []  # 18.16: no SQL access management; users.xml carries the same profile


def test_render_quotes_password_and_refuses_bad_identifiers():
    ch = replace(Settings().clickhouse, analyst_password="it's")
    assert migrate.render("BY ${analyst_password}", ch) == "BY 'it\\'s'"
    with pytest.raises(migrate.MigrationError, match="not a valid identifier"):
        migrate.render("x ${db}", replace(ch, database="a;DROP"))


def test_bad_file_names_and_duplicate_versions(tmp_path: Path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 2;")
    with pytest.raises(migrate.MigrationError, match="version 1 is also used"):
        migrate.load_migrations(tmp_path)
    (tmp_path / "0001_b.sql").unlink()
    (tmp_path / "2_bad.sql").write_text("SELECT 2;")
    with pytest.raises(migrate.MigrationError, match="NNNN_lower_name.sql"):
        migrate.load_migrations(tmp_path)


def test_server_config_xml(tmp_path: Path):
    s = Settings()
    s = replace(s, clickhouse=replace(s.clickhouse, port=29111, http_port=28111, analyst_password="pw"))
    conf = ET.fromstring(server_config.render_config_xml(s, tmp_path / "data", tmp_path / "log"))
    assert conf.findtext("listen_host") == "127.0.0.1"
    assert conf.findtext("tcp_port") == "29111" and conf.findtext("http_port") == "28111"
    assert conf.findtext("path").startswith(str(tmp_path / "data"))
    users = ET.fromstring(server_config.render_users_xml(s))
    analyst = users.find("users/analyst")
    assert analyst.findtext("profile") == "analyst"
    assert users.findtext("profiles/analyst/readonly") == "1"
    assert users.findtext("profiles/default/allow_experimental_low_cardinality_type") == "1"
    assert "pw" not in server_config.render_users_xml(s)  # stored as sha256
    with pytest.raises(ConfigError, match="analyst_user"):
        server_config.render_users_xml(replace(s, clickhouse=replace(s.clickhouse, analyst_user="a b")))


def test_parse_params():
    assert query.parse_params(["a=x=y", "n:int=5", "f:float=0.5"]) == {"a": "x=y", "n": 5, "f": 0.5}
    with pytest.raises(query.QueryInputError, match="not a valid int"):
        query.parse_params(["n:int=five"])
    with pytest.raises(query.QueryInputError, match="expected NAME=VALUE"):
        query.parse_params(["1x=2"])


def test_formats():
    cols, rows = ["brand", "posts", "tags"], [("快送", 3, ["a"]), ("x,y", None, [])]
    table = query.format_table(cols, rows).splitlines()
    assert table[0].startswith("brand") and len(table) == 4
    prefix = table[2][: table[2].index("3")]
    assert query._width(prefix) == table[0].index("posts")  # CJK counted double-width
    assert query.format_csv(cols, rows).splitlines()[2] == '"x,y",,[]'
    assert json.loads(query.format_json(cols, rows).splitlines()[0]) == {"brand": "快送", "posts": 3, "tags": ["a"]}
