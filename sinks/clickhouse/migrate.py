"""Versioned schema migrations for ClickHouse (`yuqing db migrate`).

Migrations are the files `migrations/NNNN_name.sql`, applied in version order and recorded
in `<db>.schema_migrations` with a checksum of the file. Applying is idempotent: recorded
versions are skipped, and editing a file after it was applied is an error (write a new
migration instead). Statements end with `;`. A line `-- @requires version >= 20.3` (or
`<`, `<=`, `>`, `==`) gates the next statement on the server version: on other servers it
is skipped. Placeholders: `${db}`, `${analyst_user}`, `${analyst_profile}` (identifiers),
`${analyst_password}`, `${analyst_profile_name}` (quoted SQL strings) and `${analyst_limits}`
(the analyst's settings, `name = value, ...`).

The files in `migrations/every_run/` are not recorded: they run on every migrate, so the
analyst's password, profile and limits follow the settings (on servers with SQL access
management; older servers take profile and limits from the users.xml `stack up` writes, and
migrate puts the analyst's current password into it when given the local server's file).
"""
from __future__ import annotations

import hashlib
import operator
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from core.config import ClickHouseSettings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
EVERY_RUN_DIR = MIGRATIONS_DIR / "every_run"
MIGRATIONS_TABLE = "schema_migrations"
ANALYST_PROFILE = "yuqing_analyst"
USERS_RELOAD_WAIT_S = 15.0  # ClickHouse re-reads users.xml every few seconds

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_GATE = re.compile(r"^--\s*@requires\s+version\s*(>=|<=|==|>|<)\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPS: dict[str, Callable] = {">=": operator.ge, "<=": operator.le, "==": operator.eq, ">": operator.gt, "<": operator.lt}


class MigrationError(Exception):
    """A migration cannot be applied; the message says which file and why."""


@dataclass(frozen=True)
class Statement:
    sql: str
    gate: tuple[str, tuple[int, int, int]] | None = None

    def applies_to(self, version: tuple[int, int, int]) -> bool:
        if self.gate is None:
            return True
        op, wanted = self.gate
        return _OPS[op](version, wanted)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    checksum: str
    statements: tuple[Statement, ...]

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


@dataclass
class MigrateResult:
    server_version: tuple[int, int, int]
    applied: list[str] = field(default_factory=list)
    skipped_statements: int = 0
    already: list[str] = field(default_factory=list)
    access: str = ""  # how the analyst's password and profile were (re)applied


def split_statements(text: str, where: str = "") -> list[Statement]:
    """Split SQL on `;` outside quotes and comments, keeping `@requires` gates."""
    out: list[Statement] = []
    buf: list[str] = []
    gate = None
    quote = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            buf.append(ch)
            if ch == "\\" and i + 1 < n:
                buf.append(text[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch in ("'", '"', "`"):
            quote = ch
            buf.append(ch)
            i += 1
            continue
        if text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            line = text[i:end].strip()
            if "@requires" in line:
                m = _GATE.match(line)
                if not m:
                    raise MigrationError(f"{where}: bad gate {line!r} (expected `-- @requires version >= 20.3`)")
                if "".join(buf).strip():
                    raise MigrationError(f"{where}: a gate must come before its statement, not inside it")
                gate = (m.group(1), (int(m.group(2)), int(m.group(3) or 0), int(m.group(4) or 0)))
            i = end
            continue
        if ch == ";":
            sql = "".join(buf).strip()
            if sql:
                out.append(Statement(sql, gate))
            elif gate:
                raise MigrationError(f"{where}: gate without a statement")
            buf, gate = [], None
            i += 1
            continue
        buf.append(ch)
        i += 1
    if quote:
        raise MigrationError(f"{where}: unterminated quote")
    if "".join(buf).strip():
        raise MigrationError(f"{where}: the last statement lacks its closing `;`")
    if gate:
        raise MigrationError(f"{where}: gate without a statement")
    return out


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations: list[Migration] = []
    seen: dict[int, str] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _FILE.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_name.sql")
        version = int(m.group(1))
        if version in seen:
            raise MigrationError(f"{path.name}: version {version} is also used by {seen[version]}")
        seen[version] = path.name
        data = path.read_bytes()
        statements = split_statements(data.decode("utf-8"), path.name)
        if not statements:
            raise MigrationError(f"{path.name}: no statements")
        migrations.append(Migration(version, m.group(2), hashlib.sha256(data).hexdigest(), tuple(statements)))
    return sorted(migrations, key=lambda mig: mig.version)


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def analyst_limits_sql() -> str:
    from .server_config import ANALYST_LIMITS

    return ", ".join(f"{k} = {v if isinstance(v, int) else _sql_string(str(v))}" for k, v in ANALYST_LIMITS.items())


def render(sql: str, ch: ClickHouseSettings) -> str:
    """Fill the placeholders; identifiers are validated, never quoted blindly."""
    for key, value in (("db", ch.database), ("analyst_user", ch.analyst_user), ("analyst_profile", ANALYST_PROFILE)):
        if not _IDENT.match(value):
            raise MigrationError(f"clickhouse.{'database' if key == 'db' else key}: {value!r} is not a valid identifier")
        sql = sql.replace("${" + key + "}", value)
    if "${analyst_password}" in sql:
        password = ch.analyst_secret
        if not password:
            raise MigrationError("clickhouse.analyst_password is empty: start the stack (it generates one) or set it")
        sql = sql.replace("${analyst_password}", _sql_string(password))
    sql = sql.replace("${analyst_profile_name}", _sql_string(ANALYST_PROFILE))
    sql = sql.replace("${analyst_limits}", analyst_limits_sql())
    leftover = re.search(r"\$\{[^}]*\}", sql)
    if leftover:
        raise MigrationError(f"unknown placeholder {leftover.group(0)}")
    return sql


def applied_migrations(client, database: str) -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) as recorded (argMax copes with duplicate rows)."""
    rows = client.execute(
        f"SELECT version, argMax(name, applied_at), argMax(checksum, applied_at) "
        f"FROM {database}.{MIGRATIONS_TABLE} GROUP BY version"
    )
    return {int(v): (n, c) for v, n, c in rows}


def load_every_run(directory: Path = EVERY_RUN_DIR) -> list[Statement]:
    statements: list[Statement] = []
    for path in sorted(directory.glob("*.sql")):
        statements += split_statements(path.read_text(encoding="utf-8"), f"every_run/{path.name}")
    return statements


def apply_access(client, ch: ClickHouseSettings, version: tuple[int, int, int],
                 users_xml: Path | None = None, statements: list[Statement] | None = None) -> str:
    """(Re)apply the analyst's password, profile and limits; says how.

    Servers with SQL access management run migrations/every_run/; older ones read users
    (and their profiles) only from users.xml: when migrate is given the local server's
    file, the analyst's password in it is brought in line with the settings and the
    server's reload is awaited (profile, limits and database come from `stack up`).
    """
    from .client import error_text

    statements = load_every_run() if statements is None else statements
    ran = 0
    for n, stmt in enumerate(statements, 1):
        if not stmt.applies_to(version):
            continue
        try:
            client.execute(render(stmt.sql, ch))
        except MigrationError:
            raise
        except Exception as exc:  # noqa: BLE001 - the server's message, with where it came from
            raise MigrationError(f"every_run statement {n} failed: {error_text(exc)}") from exc
        ran += 1
    if ran:
        return f"analyst {ch.analyst_user}: password and profile {ANALYST_PROFILE} applied ({ran} statements)"
    if users_xml is None:
        return f"analyst {ch.analyst_user}: defined by the server's users.xml (no SQL access management before 20.5)"
    return _refresh_users_xml_password(ch, users_xml)


def _refresh_users_xml_password(ch: ClickHouseSettings, users_xml: Path) -> str:
    """Put the settings' analyst password (as sha256) into the local server's users.xml.

    Only the password element changes: the file is the stack's, rendered at `stack up` for
    its database, and a migrate of another database must not move the analyst there."""
    import os
    import time
    import xml.etree.ElementTree as ET

    password = ch.analyst_secret
    if not password:
        return f"analyst {ch.analyst_user}: no password in the settings or {ch.secrets_dir}; users.xml left as it is"
    try:
        tree = ET.parse(users_xml)
    except (OSError, ET.ParseError) as exc:
        raise MigrationError(f"{users_xml}: cannot read it: {exc}") from None
    user = tree.getroot().find(f"users/{ch.analyst_user}")
    if user is None:
        return f"analyst {ch.analyst_user}: not in {users_xml}; left as it is"
    digest = hashlib.sha256(password.encode("utf-8")).hexdigest()
    current = user.find("password_sha256_hex")
    if current is not None and (current.text or "").strip() == digest and user.find("password") is None:
        return f"analyst {ch.analyst_user}: users.xml already has this password"
    for old in user.findall("password") + user.findall("password_sha256_hex"):
        user.remove(old)
    element = ET.Element("password_sha256_hex")
    element.text = digest
    user.insert(0, element)
    old_mtime = users_xml.stat().st_mtime
    tmp = users_xml.with_suffix(".xml.tmp")
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.chmod(0o600)
    # the server notices a change by the file's modification time in whole seconds: a
    # rewrite within the second of the last one would go unseen
    mtime = max(time.time(), old_mtime + 2)
    os.utime(tmp, (mtime, mtime))
    tmp.replace(users_xml)
    _await_analyst_login(ch, password, users_xml, user.findtext("allow_databases/database") or "default")
    return f"analyst {ch.analyst_user}: new password written to users.xml and loaded by the server"


def _await_analyst_login(ch: ClickHouseSettings, password: str, users_xml: Path, allowed: str) -> None:
    import time

    from .client import connect

    deadline = time.monotonic() + USERS_RELOAD_WAIT_S
    last = ""
    while True:  # the server re-reads the file on its own: wait until the new password works
        analyst = connect(ch, user=ch.analyst_user, password=password, database=allowed)
        try:
            analyst.execute("SELECT 1")
            return
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        finally:
            analyst.disconnect()
        if time.monotonic() > deadline:
            raise MigrationError(f"{users_xml} rewritten, but the server did not take the analyst's new "
                                 f"password within {USERS_RELOAD_WAIT_S:.0f} s (database {allowed}): {last}")
        time.sleep(0.5)


def migrate(client, ch: ClickHouseSettings, migrations: list[Migration] | None = None, log=None,
            users_xml: Path | None = None) -> MigrateResult:
    """Apply the pending migrations, then the analyst's access (every run); raise
    MigrationError if an applied migration changed. `users_xml`: the local server's file,
    rewritten on servers without SQL access management."""
    from .client import error_text, server_version

    migrations = load_migrations() if migrations is None else migrations
    db = ch.database
    if not _IDENT.match(db):
        raise MigrationError(f"clickhouse.database: {db!r} is not a valid identifier")
    version = server_version(client)
    result = MigrateResult(server_version=version)
    client.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.execute(
        f"CREATE TABLE IF NOT EXISTS {db}.{MIGRATIONS_TABLE} ("
        "version UInt32, name String, checksum String, statements_applied UInt16, "
        "statements_skipped UInt16, server_version String, applied_at DateTime) "
        "ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"
    )
    done = applied_migrations(client, db)
    # Check every recorded migration first: nothing is applied on top of a changed history.
    for mig in migrations:
        if mig.version in done and done[mig.version][1] != mig.checksum:
            raise MigrationError(
                f"{mig.filename} was changed after it was applied (checksum {mig.checksum[:12]} "
                f"!= recorded {done[mig.version][1][:12]}): revert it and add a new migration"
            )
    for mig in migrations:
        if mig.version in done:
            result.already.append(mig.filename)
            continue
        applied = skipped = 0
        for stmt in mig.statements:
            if not stmt.applies_to(version):
                skipped += 1
                continue
            try:
                client.execute(render(stmt.sql, ch))
            except MigrationError:
                raise
            except Exception as exc:  # the server's message, with the file it came from
                raise MigrationError(
                    f"{mig.filename}: statement {applied + skipped + 1} failed: {error_text(exc)}") from exc
            applied += 1
        client.execute(
            f"INSERT INTO {db}.{MIGRATIONS_TABLE} "
            "(version, name, checksum, statements_applied, statements_skipped, server_version, applied_at) VALUES",
            [(mig.version, mig.name, mig.checksum, applied, skipped, ".".join(map(str, version)),
              datetime.now(timezone.utc))],
        )
        result.applied.append(mig.filename)
        result.skipped_statements += skipped
        if log:
            log(f"applied {mig.filename}: {applied} statement(s), {skipped} skipped for this server version")
    result.access = apply_access(client, ch, version, users_xml)
    if log:
        log(result.access)
    return result
