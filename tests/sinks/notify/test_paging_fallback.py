"""Paging that does not depend on itself, with the real Prometheus and Alertmanager:
the Watchdog heartbeat reaches the dead-man's switch receiver, and an ops outage reaches the
Alertmanager-native e-mail receiver while `yuqing notify` is down.

The mail relay is a small SMTP stand-in that records what Alertmanager sends; the only
edits to the shipped alertmanager.yml are the addresses (and a shorter group_wait).
"""
from __future__ import annotations

import json
import socketserver
import threading
import urllib.request
from pathlib import Path

import pytest

from sinks.notify.config import ensure_token_file, render_alertmanager_config
from tests.sinks.notify.conftest import free_port, start_alertmanager, start_prometheus, wait_until

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "deploy" / "prometheus" / "rules" / "yuqing.rules.yml"
pytestmark = [pytest.mark.slow]


class SMTPStandIn(socketserver.ThreadingTCPServer):
    """Speaks just enough SMTP (RFC 5321) for Alertmanager: keeps each message's data."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.messages: list[str] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), SMTPHandler)


class SMTPHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        self.reply("220 smtp-stand-in ready")
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            verb = line.decode(errors="replace").strip().split(" ")[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 smtp-stand-in")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                chunks = []
                while (chunk := self.rfile.readline(65536)) not in (b".\r\n", b".\n", b""):
                    chunks.append(chunk.decode(errors="replace"))
                with self.server.lock:
                    self.server.messages.append("".join(chunks))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


@pytest.fixture
def smtp():
    server = SMTPStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_watchdog_heartbeats_and_ops_outage_mail_arrive_while_notify_is_down(tmp_path, robot, smtp):
    dead_notify = f"http://127.0.0.1:{free_port()}"  # nothing listens: notify is down
    text = render_alertmanager_config(dead_notify, ensure_token_file(tmp_path / "secrets" / "notify-token"))
    # wire the dead-man's switch to a heartbeat stand-in, as docs/runbooks.md tells operators to
    assert "  - name: deadmans-switch\n" in text and "smtp_smarthost: 127.0.0.1:25" in text
    text = text.replace("  - name: deadmans-switch\n", "  - name: deadmans-switch\n    webhook_configs:\n"
                        f"      - url: {robot.url('webhook')}\n        send_resolved: false\n", 1)
    text = text.replace("smtp_smarthost: 127.0.0.1:25", f"smtp_smarthost: 127.0.0.1:{smtp.server_address[1]}")
    text = text.replace("      group_by: [alertname, job, channel]\n      group_wait: 30s",
                        "      group_by: [alertname, job, channel]\n      group_wait: 1s")
    am = start_alertmanager(tmp_path / "am", text)
    prom = None
    try:
        # The Watchdog fires at the first evaluation, before Prometheus has found Alertmanager;
        # a short resend delay (default 1 m) lets it arrive soon after.
        prom = start_prometheus(tmp_path / "prom", {}, [RULES], am.url.removeprefix("http://"),
                                extra_args=("--rules.alert.resend-delay=2s",))
        # The Watchdog needs no input at all: Prometheus fires it, Alertmanager sends heartbeats.
        beats = wait_until(lambda: robot.messages("webhook", "YuqingWatchdog"), 60, 0.2, "a Watchdog heartbeat")
        assert beats[0]["status"] == "firing" and beats[0]["receiver"] == "deadmans-switch"

        # An ops outage (as Prometheus would send it) while notify is down still reaches e-mail.
        alert = [{"labels": {"alertname": "YuqingNotifyDeliveryFailing", "severity": "critical", "team": "ops",
                             "channel": "pr-dingtalk"},
                  "annotations": {"summary": "Notification channel pr-dingtalk fails every delivery"}}]
        req = urllib.request.Request(f"{am.url}/api/v2/alerts", data=json.dumps(alert).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
        mails = wait_until(lambda: [m for m in smtp.messages if "YuqingNotifyDeliveryFailing" in m], 60, 0.2,
                           "the ops-fallback e-mail")
        assert "Subject: [Yuqing ops] firing YuqingNotifyDeliveryFailing" in mails[0]
        assert "To: oncall-ops@localhost" in mails[0]
        # the heartbeats never went to chat (notify) and the outage never to the heartbeat
        assert not robot.messages("webhook", "YuqingNotifyDeliveryFailing")
    finally:
        if prom:
            prom.stop()
        am.stop()
