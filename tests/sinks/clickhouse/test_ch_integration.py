"""Against the real clickhouse-server: migrations, exactly-once writer, analyst user, query."""
import json
import shutil
from collections import defaultdict

import pytest
from clickhouse_driver.errors import ServerException

from sinks.clickhouse import migrate as mig
from sinks.clickhouse.client import connect
from sinks.clickhouse.query import run_query
from sinks.clickhouse.rows import assessment_row, post_row
from sinks.clickhouse.writer import ClickHouseWriter

from ch_helpers import count, migrate_db, run_yuqing, scored_post


def test_migrations_are_recorded_and_idempotent(fresh_db, tmp_path):
    ch = fresh_db.clickhouse
    client = connect(ch)
    first = mig.migrate(client, ch)
    shipped = mig.load_migrations()
    assert first.applied == [m.filename for m in shipped]
    recorded = mig.applied_migrations(client, ch.database)
    assert {v: c for v, (_, c) in recorded.items()} == {m.version: m.checksum for m in shipped}
    tables = {r[0] for r in client.execute(
        "SELECT name FROM system.tables WHERE database = %(d)s", {"d": ch.database})}
    assert {"posts", "risk_assessments", "alerts", "alert_actions", "rejects",
            "posts_hourly", "posts_hourly_mv", "posts_hourly_v", "schema_migrations"} <= tables

    second = mig.migrate(client, ch)
    assert second.applied == [] and len(second.already) == len(shipped)
    assert client.execute(f"SELECT count() FROM {ch.database}.schema_migrations")[0][0] == len(shipped)

    # an applied migration edited afterwards is refused, and nothing new is applied
    changed = tmp_path / "migrations"
    shutil.copytree(mig.MIGRATIONS_DIR, changed)
    (changed / "0001_init.sql").write_text((changed / "0001_init.sql").read_text() + "\n-- edited\n")
    (changed / "9999_extra.sql").write_text(f"CREATE TABLE IF NOT EXISTS ${{db}}.extra (a UInt8) ENGINE = Memory;")
    with pytest.raises(mig.MigrationError, match="0001_init.sql was changed after it was applied"):
        mig.migrate(client, ch, mig.load_migrations(changed))
    assert client.execute(f"EXISTS TABLE {ch.database}.extra")[0][0] == 0
    client.disconnect()


def _expected_rollup(posts: list[dict]) -> dict:
    agg = defaultdict(lambda: [0, 0, set(), 0])
    for p in posts:
        for m in p["matches"]:
            key = (p["published_at"][11:13], m["brand"], m["category"])
            a = agg[key]
            a[0] += 1
            a[1] += int(p["negative"])
            a[2].add(p["author_id"])
            a[3] += p["followers"]
    return {k: (v[0], v[1], len(v[2]), v[3]) for k, v in agg.items()}


def _rollup(settings) -> dict:
    client = connect(settings.clickhouse, database=settings.clickhouse.database)
    rows = client.execute(
        "SELECT formatDateTime(hour, '%H', 'Asia/Shanghai'), brand, category, sum(posts), sum(negative_posts), "
        "sum(unique_authors), sum(reach) FROM posts_hourly_v GROUP BY hour, brand, category")
    client.disconnect()
    return {(h, b, c): (p, n, a, r) for h, b, c, p, n, a, r in rows}


def test_writer_exactly_once_after_replay_and_in_batch_duplicates(migrated_db):
    posts = [scored_post(i, hour=10 + i % 3, brand=["快送", "KS"][i % 2], author=f"a{i % 7}",
                         followers=10 * i, negative=i % 3 == 0) for i in range(120)]
    rows = [post_row(p) for p in posts]
    writer = ClickHouseWriter(migrated_db.clickhouse).connect()
    first = writer.insert("posts", rows[:80] + rows[:10])  # duplicates inside one batch
    assert (first.inserted, first.duplicates) == (80, 10)
    replay = writer.insert("posts", rows)  # a replay of everything: only the 40 new ones land
    assert (replay.inserted, replay.duplicates) == (40, 80)
    assert count(migrated_db, "SELECT count() FROM posts") == 120
    assert count(migrated_db, "SELECT count() FROM posts FINAL") == 120
    assert _rollup(migrated_db) == _expected_rollup(posts)

    a = {"brand": "快送", "category": "outage", "window_start": "2026-11-25T10:00:00+08:00",
         "window_end": "2026-11-25T11:00:00+08:00", "posts": 3, "negative_ratio": 0.5, "influence": 0.1,
         "severity": 0.5, "volatility": 0.2, "risk_score": 0.3, "level": "low",
         "computed_at": "2026-11-25T11:00:01+08:00"}
    writer.insert("risk_assessments", [assessment_row(a)])
    writer.insert("risk_assessments", [assessment_row({**a, "computed_at": "2026-11-25T11:05:00+08:00",
                                                         "level": "medium"})])
    assert count(migrated_db, "SELECT count() FROM risk_assessments FINAL") == 1
    assert count(migrated_db, "SELECT toString(level) FROM risk_assessments FINAL") == "medium"
    writer.close()


def test_writer_isolates_rows_the_server_refuses(migrated_db):
    rows = [post_row(scored_post(i, prefix="iso")) for i in range(6)]
    bad = list(rows[3])
    bad[9] = "many"  # followers must be UInt64
    rows[3] = tuple(bad)
    writer = ClickHouseWriter(migrated_db.clickhouse).connect()
    report = writer.insert("posts", rows)
    writer.close()
    assert report.inserted == 5
    assert [i for i, _ in report.refused] == [3]
    assert report.refused[0][1].startswith("clickhouse refused the row:")
    assert count(migrated_db, "SELECT count() FROM posts") == 5


@pytest.fixture
def analyst_db(own_clickhouse):
    """A private server with generated passwords, migrated; on 18.16 its users.xml allows
    the analyst only in the settings' database."""
    settings = own_clickhouse.settings
    migrate_db(settings)
    return settings


def test_analyst_can_select_but_not_write(analyst_db):
    ch = analyst_db.clickhouse
    cols, rows = run_query(ch, "SELECT count() AS n FROM posts")
    assert cols == ["n"] and rows[0][0] >= 0
    analyst = connect(ch, user=ch.analyst_user, password=ch.analyst_secret, database=ch.database)
    refused = {
        "insert": lambda: analyst.execute("INSERT INTO posts (id) VALUES", [("analyst:1",)]),
        "insert-select": lambda: analyst.execute("INSERT INTO posts SELECT * FROM posts LIMIT 1"),
        "create": lambda: analyst.execute("CREATE TABLE analyst_t (a UInt8) ENGINE = Memory"),
        "drop": lambda: analyst.execute("DROP TABLE rejects"),
        "alter": lambda: analyst.execute("ALTER TABLE posts DELETE WHERE 1"),
    }
    for what, fn in refused.items():
        with pytest.raises(ServerException) as info:
            fn()
        assert "readonly" in str(info.value).lower() or "not enough privileges" in str(info.value).lower(), what
    analyst.disconnect()
    assert count(analyst_db, "EXISTS TABLE rejects") == 1


def test_query_command_binds_parameters(analyst_db):
    post = scored_post(1, prefix=f"q{id(analyst_db)}")
    writer = ClickHouseWriter(analyst_db.clickhouse).connect()
    writer.insert("posts", [post_row(post)])
    writer.close()
    sql = "SELECT count() AS n, %(v)s AS v FROM posts WHERE id = %(id)s"
    attack = "x' OR '1'='1"
    out = run_yuqing(["query", sql, "--param", f"id={attack}", "--param", f"v={attack}", "--format", "json"],
                     analyst_db)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"n": 0, "v": attack}  # the quote stayed inside the literal
    out = run_yuqing(["query", sql, "--param", f"id={post['id']}", "--param", "v=ok", "--format", "csv"],
                     analyst_db)
    assert out.stdout.splitlines() == ["n,v", "1,ok"]
    out = run_yuqing(["query", "SELECT 1 AS one, '快送' AS brand"], analyst_db)
    assert out.stdout.splitlines()[0].split() == ["one", "brand"] and "快送" in out.stdout
    out = run_yuqing(["query", "DROP TABLE posts"], analyst_db)
    assert out.returncode == 1 and "readonly" in out.stderr.lower()
    out = run_yuqing(["query", "SELECT %(missing)s"], analyst_db)
    assert out.returncode == 2 and "--param missing" in out.stderr


def test_replay_dedup_matches_ids_with_quotes_backslashes_and_cjk(migrated_db):
    awkward = ["it's", "back\\slash", "帖子-1", "tab\there", "'; DROP TABLE posts; --", "%(ids)s"]
    rows = [(pid,) + post_row(scored_post(i))[1:] for i, pid in enumerate(awkward)]
    writer = ClickHouseWriter(migrated_db.clickhouse).connect()
    assert writer.insert("posts", rows).inserted == len(awkward)
    assert writer.existing_post_ids(awkward + ["absent"]) == set(awkward)
    replay = writer.insert("posts", rows)
    assert (replay.inserted, replay.duplicates) == (0, len(awkward))
    assert count(migrated_db, "SELECT count() FROM posts") == len(awkward)
