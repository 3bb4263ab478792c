"""`yuqing run`: the whole pipeline on the bundled sample, shown live in the terminal.

It starts the stack (if needed), applies the ClickHouse schema, writes a fresh sample
(a privacy crisis growing among calm chatter, a launch, a complaint trickle) and replays
it into Kafka with time compression, and runs the scoring job, the ClickHouse sink, the
notifier (with a local webhook standing in for on-call) and the report server. Ctrl-C
stops everything it started.
"""
from __future__ import annotations

import json
import signal
import sys
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from core.config import REPO_ROOT, Settings, load_settings

WATCHLIST = REPO_ROOT / "data" / "watchlist.sample.yaml"
SPARK = "▁▂▃▄▅▆▇█"
LEVEL_STYLE = {"low": "green", "medium": "yellow", "high": "bold red"}


# ------------------------------------------------------------------ the on-call stand-in

class WebhookInbox:
    """A local generic-webhook receiver: where `yuqing notify` delivers during the demo."""

    def __init__(self) -> None:
        self.messages: deque[dict[str, Any]] = deque(maxlen=50)
        self.count = 0
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 1 << 20))
                try:
                    inbox.messages.append(json.loads(body))
                except ValueError:
                    inbox.messages.append({"text": body.decode("utf-8", "replace")})
                inbox.count += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def demo_notify_config(path: Path, inbox_port: int, run_tag: str) -> Path:
    path.write_text(
        "# written by `yuqing run`: every page goes to the local demo inbox\n"
        "dedup_window_s: 900\n"
        "retry: {attempts: 3, backoff_s: 0.5, timeout_s: 5}\n"
        f"kafka: {{enabled: true, min_level: high, auto_offset_reset: latest, group_id: yuqing-notify-{run_tag}}}\n"
        "channels:\n"
        "  - name: demo-inbox\n"
        "    kind: webhook\n"
        f"    url: http://127.0.0.1:{inbox_port}/hooks/alerts\n",
        encoding="utf-8")
    return path


def write_report_token(path: Path) -> Path:
    """A fresh bearer token for this run's report endpoint, readable by this user only."""
    import os
    import secrets

    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# written by `yuqing run`: the report endpoint's token for this run\n"
                  f"- name: demo\n  token: \"{token}\"\n")
    return path


# ------------------------------------------------------------------ the sample

def write_sample(path: Path, hours: float, seed: int, run_tag: str) -> tuple[int, datetime, datetime]:
    """A seeded sample ending now; ids carry the run tag so that reruns never collide."""
    from scoring.watchlist import load_watchlist
    from yuqing.synth import generate, sample_scenarios

    watchlist = load_watchlist(WATCHLIST)
    start = (datetime.now(timezone.utc) - timedelta(hours=hours)).replace(microsecond=0)
    posts = generate(sample_scenarios(watchlist, hours=hours, start=start), watchlist, seed=seed,
                     arrival_jitter_s=20)
    with open(path, "w", encoding="utf-8") as out:
        for post in posts:
            post["id"] = f"{post['id']}-{run_tag}"
            if post.get("repost_of"):
                post["repost_of"] = f"{post['repost_of']}-{run_tag}"
            out.write(json.dumps(post, ensure_ascii=False) + "\n")
    return len(posts), start, start + timedelta(hours=hours)


# ------------------------------------------------------------------ live state

@dataclass
class KeyView:
    level: str = "low"
    risk: float = 0.0
    influence: float = 0.0
    severity: float = 0.0
    volatility: float = 0.0
    posts: int = 0
    window_end: str = ""
    history: deque = field(default_factory=lambda: deque(maxlen=24))


class LiveState:
    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], KeyView] = defaultdict(KeyView)
        self.alerts: deque[dict[str, Any]] = deque(maxlen=8)
        self.assessments = 0
        self.alert_count = 0
        self.first_high_at: float | None = None
        self.lock = threading.Lock()

    def on_assessment(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.assessments += 1
            view = self.keys[(record["brand"], record["category"])]
            if record["window_end"] < view.window_end:
                return  # an older window arriving late on another partition
            view.level, view.risk = record["level"], record["risk_score"]
            view.influence, view.severity, view.volatility = record["influence"], record["severity"], record["volatility"]
            view.posts, view.window_end = record["posts"], record["window_end"]
            view.history.append(record["posts"])

    def on_alert(self, record: dict[str, Any], started: float) -> None:
        with self.lock:
            self.alert_count += 1
            self.alerts.appendleft(record)
            if record.get("level") == "high" and self.first_high_at is None:
                self.first_high_at = time.monotonic() - started


def consume(settings: Settings, state: LiveState, stop: threading.Event, started: float) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        settings.kafka.assessments_topic, settings.kafka.alerts_topic,
        bootstrap_servers=settings.kafka.bootstrap, group_id=f"yuqing-run-view-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="latest", enable_auto_commit=False, consumer_timeout_ms=500,
        request_timeout_ms=30_000, **settings.kafka.kafka_python_options())
    try:
        while not stop.is_set():
            for record in consumer:
                try:
                    value = json.loads(record.value)
                except ValueError:
                    continue
                if record.topic == settings.kafka.alerts_topic:
                    state.on_alert(value, started)
                else:
                    state.on_assessment(value)
                if stop.is_set():
                    break
    finally:
        consumer.close()


def sparkline(values) -> str:
    values = list(values)
    if not values:
        return ""
    top = max(values) or 1
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1)))] for v in values)


def _deadline_text(alert: dict[str, Any]) -> str:
    deadlines = alert.get("deadlines") or []
    if not deadlines:
        return ""
    first = deadlines[0]
    due = first.get("due_at", "")[11:16]
    return f"{first.get('name', 'deadline')} due {due} (+{first.get('hours_after_detection', '?')}h)"


def render(state: LiveState, settings: Settings, info: dict[str, Any]):
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    with state.lock:
        table = Table(expand=True, title="risk by brand × category (10-min window, 1-min slide)")
        for column in ("brand", "category", "level", "risk", "infl.", "sev.", "vol.", "posts", "volume"):
            table.add_column(column, justify="right" if column in ("risk", "infl.", "sev.", "vol.", "posts") else "left")
        ranked = sorted(state.keys.items(), key=lambda kv: -kv[1].risk)[:14]
        for (brand, category), v in ranked:
            table.add_row(brand, category, Text(v.level, style=LEVEL_STYLE.get(v.level, "")), f"{v.risk:.2f}",
                          f"{v.influence:.2f}", f"{v.severity:.2f}", f"{v.volatility:.2f}", str(v.posts),
                          sparkline(v.history))
        alerts = Table(expand=True, title="latest alert events (→ on-call)")
        for column in ("window end", "brand / category", "event", "level", "playbook", "deadline"):
            alerts.add_column(column)
        for a in state.alerts:
            alerts.add_row(a.get("window_end", "")[11:16], f"{a['brand']} / {a['category']}", a.get("event", ""),
                           Text(a["level"], style=LEVEL_STYLE.get(a["level"], "")),
                           (a.get("playbook") or {}).get("title", ""), _deadline_text(a))
        elapsed = time.monotonic() - info["started"]
        header = Text.assemble(
            ("Yuqing 舆情雷达 — live demo  ", "bold"),
            f"{elapsed:5.0f} s  |  sample: {info['posts']:,} posts over {info['hours']:g} h at ×{info['speedup']:g}  |  "
            f"assessments {state.assessments:,}  alerts {state.alert_count}  on-call pages {info['inbox'].count}"
            + (f"  |  first HIGH after {state.first_high_at:.0f} s" if state.first_high_at else ""))
        footer = Text(
            f"Prometheus {settings.prometheus.url}/alerts   Alertmanager {settings.alertmanager.url}   "
            f"report endpoint http://{settings.report.host}:{settings.report.port}/reports "
            f"(bearer token in {info['run_dir'] / 'report-tokens.yaml'})\n"
            "SQL: yuqing query \"SELECT brand, category, max(risk_score) FROM risk_assessments FINAL "
            "GROUP BY brand, category ORDER BY 3 DESC\"   logs: " + str(info["run_dir"] / "logs") + "   Ctrl-C stops")
    return Group(Panel(header), table, alerts, Panel(footer))


# ------------------------------------------------------------------ the command

def run(args) -> int:
    from core.errors import CommandError
    from yuqing.pipeline import Pipeline, wait_http
    from yuqing.stack import manager
    from yuqing.stack.components import StackError

    settings = load_settings(args.config)
    say = lambda m: print(f"run: {m}", file=sys.stderr, flush=True)  # noqa: E731
    run_tag = datetime.now(timezone.utc).strftime("r%m%d%H%M%S")
    run_dir = settings.state_dir / "runs" / run_tag
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)

    already = {s.name for s in manager.status(settings) if s.healthy}
    try:
        manager.up(settings, on_progress=say)
    except StackError as exc:
        raise CommandError(str(exc)) from None
    started_stack = [c.name for c in manager.select(None) if c.name not in already]

    from sinks.clickhouse.client import connect
    from sinks.clickhouse.migrate import migrate

    client = connect(settings.clickhouse)
    try:
        applied = migrate(client, settings.clickhouse).applied
    finally:
        client.disconnect()
    say(f"ClickHouse schema ready ({len(applied)} migration(s) applied now)")
    sample = run_dir / "sample.jsonl"
    count, start, end = write_sample(sample, args.hours, args.seed, run_tag)
    say(f"sample: {count:,} posts from {start:%H:%M} to {end:%H:%M} UTC ({sample})")

    inbox = WebhookInbox()
    pipeline = Pipeline(settings, run_dir)
    stop = threading.Event()
    interrupted = threading.Event()

    def on_signal(signum, frame):
        interrupted.set()
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    state = LiveState()
    viewer = None
    try:
        pipeline.start("sink", "sink", "clickhouse")
        pipeline.start("notify", "notify", "--config", str(demo_notify_config(run_dir / "notify.yaml", inbox.port, run_tag)))
        tokens_file = write_report_token(run_dir / "report-tokens.yaml")
        pipeline.start("report-server", "report-server", "--tokens-file", str(tokens_file))
        pipeline.start("job", "job", "run", "--watchlist", str(WATCHLIST), "--checkpoint-interval", "30", "--from-now",
                       "--group-id", f"yuqing-run-{run_tag}")
        wait_http(f"http://{settings.metrics.host}:{settings.metrics.notify_port}/healthz", 30)
        say(f"report endpoint: TOKEN=$(awk -F'\"' '/token:/ {{print $2}}' {tokens_file}); "
            f"curl -H \"Authorization: Bearer $TOKEN\" "
            f"-d 'text=快送APP 泄露了我的手机号' http://{settings.report.host}:{settings.report.port}/reports")
        viewer = threading.Thread(target=consume, args=(settings, state, stop, started), daemon=True)
        viewer.start()
        say("waiting for the scoring job to start (≈15 s) before replaying the sample")
        if not wait_http(f"http://{settings.metrics.host}:{settings.metrics.job_port}/metrics", 120):
            raise CommandError(f"the scoring job did not start; see {pipeline.get('job').log}")
        pipeline.start("crawler", "crawl", "--jsonl", str(sample), "--speedup", str(args.speedup),
                       "--state-dir", str(run_dir / "crawl"))
        info = {"started": started, "posts": count, "hours": args.hours, "speedup": args.speedup,
                "inbox": inbox, "run_dir": run_dir}
        deadline = started + args.duration if args.duration else None
        if sys.stdout.isatty() and not args.plain:
            from rich.live import Live

            with Live(render(state, settings, info), refresh_per_second=2, screen=False) as live:
                while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                    _check(pipeline)
                    live.update(render(state, settings, info))
                    time.sleep(0.5)
        else:
            seen = 0
            last = 0.0
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                _check(pipeline)
                with state.lock:
                    new = list(state.alerts)[: state.alert_count - seen]
                    seen = state.alert_count
                for a in reversed(new):
                    print(f"ALERT {a['event']:<7} {a['level']:<6} {a['brand']}/{a['category']} "
                          f"risk={a['risk_score']:.2f} window_end={a['window_end']} playbook={a['playbook']['title']}",
                          flush=True)
                if time.monotonic() - last > 10:
                    last = time.monotonic()
                    with state.lock:
                        top = sorted(state.keys.items(), key=lambda kv: -kv[1].risk)[:3]
                    print(f"[{time.monotonic() - started:5.0f}s] assessments={state.assessments} "
                          f"alerts={state.alert_count} pages={inbox.count} top: "
                          + ", ".join(f"{b}/{c}={v.level}({v.risk:.2f})" for (b, c), v in top), flush=True)
                time.sleep(0.5)
    except KeyboardInterrupt:
        interrupted.set()
    finally:
        stop.set()
        signal.signal(signal.SIGTERM, previous)
        say("stopping the pipeline processes")
        pipeline.stop()
        inbox.close()
        if viewer is not None:
            viewer.join(timeout=5)
        if started_stack and not args.keep_stack:
            say(f"stopping the services this run started: {', '.join(started_stack)}")
            manager.down(settings, started_stack, on_progress=say)
    with state.lock:
        high = sorted({f"{b}/{c}" for (b, c), v in state.keys.items() if v.level == "high"})
    say(f"done: {state.assessments:,} assessments, {state.alert_count} alert events, {inbox.count} on-call pages"
        + (f", first HIGH {state.first_high_at:.0f} s after start" if state.first_high_at else "")
        + (f"; high now: {', '.join(high)}" if high else ""))
    return 130 if interrupted.is_set() and not args.duration else 0


def _check(pipeline) -> None:
    from core.errors import CommandError

    dead = [d for d in pipeline.check() if not d.startswith("crawler")]
    if dead:
        raise CommandError("; ".join(dead))


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="the whole pipeline on the bundled sample, shown live (Ctrl-C stops)",
        description="Start the stack and every pipeline process, replay a fresh sample with time "
                    "compression, and show brands' risk levels and alerts live.")
    parser.add_argument("--config", help="YAML settings file (or YUQING_CONFIG)")
    parser.add_argument("--hours", type=float, default=4.0, help="hours of sample posts (default 4)")
    parser.add_argument("--speedup", type=float, default=60.0, help="time compression (default 60: 1 h per minute)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--plain", action="store_true", help="line output instead of the live view")
    parser.add_argument("--keep-stack", action="store_true", help="leave the stack's services running at the end")
    parser.set_defaults(func=run)
