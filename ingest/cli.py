"""`yuqing crawl` and `yuqing report-server`."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    crawl = subparsers.add_parser(
        "crawl", help="run crawlers (RSS, JSON APIs, HTML, JSONL replay) into Kafka posts.raw",
        description="Poll the sources in a crawl.yaml (or replay one JSONL file) and produce "
                    "normalised posts to Kafka; bad records go to the dead-letter topic. "
                    "Progress goes to stderr.")
    what = crawl.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", type=Path, metavar="FILE", help="crawl.yaml (see data/crawl.sample.yaml)")
    what.add_argument("--jsonl", type=Path, metavar="FILE", help="replay posts from a JSONL file (CONTRACTS §1)")
    crawl.add_argument("--speedup", type=float, default=0.0, metavar="N",
                       help="with --jsonl: keep relative timing, N times faster (60 = one hour per minute); "
                            "0 (default) = as fast as possible")
    crawl.add_argument("--follow", action="store_true", help="with --jsonl: keep tailing the file")
    crawl.add_argument("--from-start", action="store_true",
                       help="with --jsonl: forget the saved offset and replay the whole file")
    crawl.add_argument("--once", action="store_true", help="poll every source once and exit")
    _kafka_options(crawl)
    crawl.add_argument("--state-dir", type=Path, help="cursors and dedup state (default: STATE_DIR/crawl)")
    crawl.add_argument("--metrics-port", type=int,
                       help="serve Prometheus metrics here (default: metrics.crawler_port; 0 = off)")
    crawl.set_defaults(func=run_crawl)

    report = subparsers.add_parser(
        "report-server", help="HTTP endpoint (POST /reports) that files reports into Kafka posts.raw",
        description="Accept reports from employees (OA) and users (in-app feedback) as JSON or "
                    "form posts, validate them and produce them to Kafka. GET /healthz, GET /metrics.")
    report.add_argument("--host", help="address to bind (default: metrics.host)")
    report.add_argument("--port", type=int, help="port (default: metrics.report_server_port)")
    _kafka_options(report)
    report.set_defaults(func=run_report_server)


def _kafka_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap (default: from settings)")
    parser.add_argument("--topic", help="posts topic (default: kafka.raw_topic)")
    parser.add_argument("--dlq-topic", help="dead-letter topic (default: kafka.dlq_topic)")


def _settings() -> Any:
    from yuqing.cli import CommandError
    from yuqing.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def _producer(args: argparse.Namespace, settings: Any, client_id: str, linger_ms: int) -> Any:
    from ingest.producer import DeliveryError, PostProducer
    from yuqing.cli import CommandError

    bootstrap = args.bootstrap or settings.kafka.bootstrap
    try:
        return PostProducer(bootstrap, args.topic or settings.kafka.raw_topic,
                            args.dlq_topic or settings.kafka.dlq_topic,
                            timeout_s=settings.kafka.request_timeout_s, client_id=client_id, linger_ms=linger_ms)
    except DeliveryError as exc:
        raise CommandError(f"{exc} (is the stack up? `yuqing stack up`)") from None


def _stop_on_sigterm(stop: threading.Event) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())


def run_crawl(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from ingest.config import CrawlConfig, CrawlConfigError, load_crawl_config
    from ingest.crawler import Crawler
    from ingest.dedup import DedupConfig, Deduper
    from ingest.http import HttpClient, HttpConfig
    from ingest.metrics import IngestMetrics
    from ingest.sources.jsonl import JsonlSource
    from ingest.state import CursorStore, StateError
    from yuqing.cli import CommandError

    settings = _settings()
    if args.config is None and (args.speedup < 0):
        raise CommandError("--speedup must be >= 0")
    if args.config is not None and (args.speedup or args.follow or args.from_start):
        raise CommandError("--speedup, --follow and --from-start go with --jsonl")
    if args.jsonl is not None:
        if not args.jsonl.is_file():
            raise CommandError(f"replay file {args.jsonl} does not exist")
        name = f"replay-{args.jsonl.stem}"
        source = JsonlSource({"name": name, "path": str(args.jsonl), "speedup": args.speedup,
                              "interval_s": 1.0, "tail": bool(args.follow)}, "--jsonl")
        config = CrawlConfig(HttpConfig(), DedupConfig(), [source])
        once = args.once or not args.follow
    else:
        try:
            config = load_crawl_config(args.config)
        except CrawlConfigError as exc:
            raise CommandError(str(exc)) from None
        once = args.once
        if not config.sources:
            raise CommandError(f"{args.config}: every source is disabled")
    state_dir = (args.state_dir or settings.state_dir / "crawl").resolve()
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        if args.from_start:
            CursorStore(state_dir).save(config.sources[0].name, {})
        deduper = Deduper(config.dedup, state_dir / "dedup.json")
    except (OSError, StateError) as exc:
        raise CommandError(f"state dir {state_dir}: {exc}") from None
    metrics = IngestMetrics()
    port = settings.metrics.crawler_port if args.metrics_port is None else args.metrics_port
    if port:
        try:
            start_http_server(port, addr=settings.metrics.host, registry=metrics.registry)
        except OSError as exc:
            raise CommandError(f"cannot serve metrics on {settings.metrics.host}:{port}: {exc.strerror}"
                               " (pass --metrics-port 0 to turn them off)") from None
    producer = _producer(args, settings, "yuqing-crawl", linger_ms=20)
    crawler = Crawler(config.sources, producer, HttpClient(config.http), state_dir, metrics, deduper)
    _stop_on_sigterm(crawler.stop)
    names = ", ".join(s.name for s in config.sources)
    print(f"crawl: {len(config.sources)} source(s) [{names}] -> {producer.topic}; state in {state_dir}"
          + ("" if once else "; Ctrl-C to stop"), file=sys.stderr)
    try:
        if once:
            failed = [r for r in crawler.run_once() if r.error]
            if failed:
                raise CommandError(f"{len(failed)} source(s) failed: " + "; ".join(
                    f"{r.source}: {r.error}" for r in failed))
        else:
            crawler.run_forever()
    except KeyboardInterrupt:
        crawler.stop.set()
    finally:
        producer.close()
    return 0


def run_report_server(args: argparse.Namespace) -> int:
    from ingest.report import ReportServer
    from yuqing.cli import CommandError

    settings = _settings()
    host = args.host or settings.metrics.host
    port = settings.metrics.report_server_port if args.port is None else args.port
    producer = _producer(args, settings, "yuqing-report", linger_ms=0)
    try:
        server = ReportServer(producer, host, port)
    except OSError as exc:
        producer.close()
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    stop = threading.Event()
    _stop_on_sigterm(stop)
    server.start()
    print(f"report-server: POST http://{host}:{server.port}/reports -> {producer.topic}; "
          f"GET /healthz, /metrics", file=sys.stderr)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        producer.close()
    return 0
