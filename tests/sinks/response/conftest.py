"""A fresh, migrated ClickHouse database on the real test stack (dropped afterwards), and a
stand-in chat robot (generic webhook) that records what the reminders deliver."""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sinks.clickhouse.client import connect
from sinks.clickhouse.migrate import migrate


@pytest.fixture
def response_db(clickhouse_settings):
    ch = replace(clickhouse_settings.clickhouse, database=f"yq_resp_{uuid.uuid4().hex[:10]}")
    client = connect(ch)
    try:
        migrate(client, ch)
        yield replace(clickhouse_settings, clickhouse=ch)
    finally:
        client.execute(f"DROP DATABASE IF EXISTS {ch.database}")
        client.disconnect()


@pytest.fixture
def robot():
    """Accepts POSTs on 127.0.0.1:<free port>; `.bodies` holds the JSON received."""
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            bodies.append(json.loads(raw))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.bodies = bodies
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield server
    server.shutdown()
    server.server_close()
