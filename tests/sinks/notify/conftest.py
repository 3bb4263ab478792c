"""Fixtures for the notifier: a stand-in DingTalk/Feishu robot that VERIFIES signatures,
and real Prometheus / Alertmanager processes on free ports (never mocked).

Kafka comes from the project's `kafka_bootstrap` / `kafka_topic` fixtures (tests/conftest.py).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

DINGTALK_SECRET = "SECtest-dingtalk-secret"
FEISHU_SECRET = "test-feishu-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout_s: float, interval_s: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def http_get_json(url: str, timeout_s: float = 3.0):
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return json.loads(resp.read())


# --- the robot stand-in ---------------------------------------------------------------------
@dataclass
class RobotReceiver:
    """DingTalk at /dingtalk/send?access_token=…, Feishu at /feishu/hook/<id>.

    Accepts only correctly signed requests with a timestamp within an hour, like the
    real services; `fail_next` makes the next N requests answer HTTP 500.
    """

    dingtalk_secret: str = DINGTALK_SECRET
    feishu_secret: str = FEISHU_SECRET
    accepted: list[tuple[str, dict]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def url(self, kind: str) -> str:
        return {"dingtalk": f"http://127.0.0.1:{self.port}/dingtalk/send?access_token=tok",
                "feishu": f"http://127.0.0.1:{self.port}/feishu/hook/abc",
                "webhook": f"http://127.0.0.1:{self.port}/webhook"}[kind]

    def messages(self, kind: str, containing: str = "") -> list[dict]:
        with self.lock:
            return [b for k, b in self.accepted if k == kind and containing in json.dumps(b, ensure_ascii=False)]

    def check(self, path: str, body: dict) -> tuple[str, str | None]:
        parts = urllib.parse.urlsplit(path)
        now = time.time()
        if parts.path == "/dingtalk/send":
            q = urllib.parse.parse_qs(parts.query)
            ts, sign = q.get("timestamp", [""])[0], q.get("sign", [""])[0]
            if q.get("access_token") != ["tok"] or not ts.isdigit():
                return "dingtalk", "missing token or timestamp"
            want = base64.b64encode(hmac.new(self.dingtalk_secret.encode(), f"{ts}\n{self.dingtalk_secret}".encode(),
                                             hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(want, sign) or abs(now - int(ts) / 1000) > 3600:
                return "dingtalk", "sign not match"
            if body.get("msgtype") != "markdown" or not body.get("markdown", {}).get("text"):
                return "dingtalk", "bad payload"
            return "dingtalk", None
        if parts.path.startswith("/feishu/hook/"):
            ts, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
            if not ts.isdigit():
                return "feishu", "missing timestamp"
            want = base64.b64encode(hmac.new(f"{ts}\n{self.feishu_secret}".encode(), b"", hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(want, sign) or abs(now - int(ts)) > 3600:
                return "feishu", "sign match fail"
            if body.get("msg_type") != "text" or not body.get("content", {}).get("text"):
                return "feishu", "bad payload"
            return "feishu", None
        if parts.path == "/webhook":
            return "webhook", None
        return "unknown", "no such robot"


@pytest.fixture
def robot():
    receiver = RobotReceiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                failing = receiver.fail_next > 0
                if failing:
                    receiver.fail_next -= 1
            if failing:
                self.send_response(500)
                self.end_headers()
                return
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            kind, error = receiver.check(self.path, body)
            with receiver.lock:
                if error:
                    receiver.rejected.append((kind, error))
                else:
                    receiver.accepted.append((kind, body))
            code = {"dingtalk": {"errcode": 310000, "errmsg": error},
                    "feishu": {"code": 19021, "msg": error}}.get(kind, {"error": error}) if error else \
                {"errcode": 0, "errmsg": "ok"} if kind == "dingtalk" else {"code": 0, "msg": "success"}
            out = json.dumps(code).encode()
            self.send_response(404 if kind == "unknown" else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    receiver.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield receiver
    httpd.shutdown()
    httpd.server_close()


# --- real Prometheus and Alertmanager --------------------------------------------------------
@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


def _wait_ready(proc: Proc, timeout_s: float = 20) -> None:
    def ready():
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited: {proc.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{proc.url}/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False
    wait_until(ready, timeout_s, what=f"{proc.name} ready")


def start_alertmanager(workdir: Path, config_text: str) -> Proc:
    if not shutil.which("prometheus-alertmanager"):
        pytest.fail("prometheus-alertmanager missing: apt-get install -y prometheus-alertmanager")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(config_text, encoding="utf-8")
    port = free_port()
    log = workdir / "alertmanager.log"
    popen = subprocess.Popen(
        ["prometheus-alertmanager", f"--config.file={workdir / 'alertmanager.yml'}",
         f"--storage.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--cluster.listen-address="],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    proc = Proc("alertmanager", popen, f"http://127.0.0.1:{port}", log)
    try:
        _wait_ready(proc)
    except BaseException:
        proc.stop()
        raise
    return proc


def start_prometheus(workdir: Path, jobs: dict[str, list[str]], rule_files: list[Path], alertmanager: str,
                     extra_args: tuple[str, ...] = ()) -> Proc:
    if not shutil.which("prometheus"):
        pytest.fail("prometheus missing: apt-get install -y prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s", "  evaluation_interval: 1s",
             "alerting:", "  alertmanagers:", "    - static_configs:", f"        - targets: ['{alertmanager}']",
             "rule_files:"] + [f"  - {p}" for p in rule_files] + ["scrape_configs:"]
    for job, targets in jobs.items():
        lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: {json.dumps(targets)}"]
    (workdir / "prometheus.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    port = free_port()
    log = workdir / "prometheus.log"
    popen = subprocess.Popen(
        ["prometheus", f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", *extra_args],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    proc = Proc("prometheus", popen, f"http://127.0.0.1:{port}", log)
    try:
        _wait_ready(proc)
    except BaseException:
        proc.stop()
        raise
    return proc
