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
    crawl.add_argument("--out", type=Path, metavar="POSTS.jsonl",
                       help="with --config --once: preview a source - write the normalised posts here "
                            "instead of Kafka (no broker needed; cursors start fresh unless --state-dir)")
    crawl.add_argument("--dlq-out", type=Path, metavar="REJECTS.jsonl",
                       help="with --out: write the rejected items here, one JSON object each with its reason")
    _kafka_options(crawl)
    crawl.add_argument("--state-dir", type=Path, help="cursors and dedup state (default: STATE_DIR/crawl)")
    crawl.add_argument("--metrics-port", type=int,
                       help="serve Prometheus metrics here (default: metrics.crawler_port; 0 = off)")
    crawl.set_defaults(func=run_crawl)

    report = subparsers.add_parser(
        "report-server", help="HTTP endpoint (POST /reports) that files reports into Kafka posts.raw",
        description="Accept reports from employees (OA) and users (in-app feedback) as JSON or "
                    "form posts with a bearer token (YUQING_REPORT_TOKENS=name:token,... or the "
                    "report.tokens_file setting), validate them and produce them to Kafka. "
                    "Public port: POST /reports, GET /healthz, /readyz; metrics port: GET /metrics.")
    report.add_argument("--host", help="public address to bind (default: report.host)")
    report.add_argument("--port", type=int, help="public port (default: report.port)")
    report.add_argument("--metrics-port", type=int,
                        help="serve /metrics on metrics.host at this port (default: metrics.report_server_port; 0 = off)")
    report.add_argument("--tokens-file", type=Path, metavar="FILE",
                        help="YAML list of {name, token, channel options} (default: report.tokens_file); "
                             "adds to YUQING_REPORT_TOKENS")
    _kafka_options(report)
    report.set_defaults(func=run_report_server)


def _kafka_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap (default: from settings)")
    parser.add_argument("--topic", help="posts topic (default: kafka.raw_topic)")
    parser.add_argument("--dlq-topic", help="dead-letter topic (default: kafka.dlq_topic)")


def _settings() -> Any:
    from core.errors import CommandError
    from core.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def _producer(args: argparse.Namespace, settings: Any, client_id: str, linger_ms: int) -> Any:
    from ingest.producer import DeliveryError, PostProducer
    from core.errors import CommandError

    bootstrap = args.bootstrap or settings.kafka.bootstrap
    try:
        return PostProducer(bootstrap, args.topic or settings.kafka.raw_topic,
                            args.dlq_topic or settings.kafka.dlq_topic,
                            timeout_s=settings.kafka.request_timeout_s, client_id=client_id, linger_ms=linger_ms,
                            client_options=settings.kafka.kafka_python_options())
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
    from core.errors import CommandError

    settings = _settings()
    if args.config is None and (args.speedup < 0):
        raise CommandError("--speedup must be >= 0")
    if args.config is not None and (args.speedup or args.follow or args.from_start):
        raise CommandError("--speedup, --follow and --from-start go with --jsonl")
    preview = args.out is not None
    if args.dlq_out is not None and not preview:
        raise CommandError("--dlq-out goes with --out")
    if preview and (args.config is None or not args.once):
        raise CommandError("--out previews a crawl config: use it with --config FILE --once")
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
    scratch = None
    if preview and args.state_dir is None:
        import tempfile

        scratch = tempfile.TemporaryDirectory(prefix="yuqing-preview-")
        args.state_dir = Path(scratch.name)  # a preview never moves the live cursors
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
    if preview and args.metrics_port is None:
        port = 0
    if port:
        try:
            start_http_server(port, addr=settings.metrics.host, registry=metrics.registry)
        except OSError as exc:
            raise CommandError(f"cannot serve metrics on {settings.metrics.host}:{port}: {exc.strerror}"
                               " (pass --metrics-port 0 to turn them off)") from None
    if preview:
        from ingest.preview import PreviewSink

        try:
            producer = PreviewSink(args.out, args.dlq_out)
        except OSError as exc:
            raise CommandError(f"cannot write the preview: {exc}") from None
    else:
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
        if preview:
            print(f"crawl preview: {producer.counts['post']} post(s) -> {args.out}, "
                  f"{producer.counts['dlq']} reject(s)" + (f" -> {args.dlq_out}" if args.dlq_out else ""),
                  file=sys.stderr)
        if scratch is not None:
            scratch.cleanup()
    return 0


def run_report_server(args: argparse.Namespace) -> int:
    from ingest.report import ReportServer, check_settings
    from ingest.report_auth import TokenError, load_registry
    from core.errors import CommandError

    settings = _settings()
    try:
        tokens = load_registry(str(args.tokens_file or settings.report.tokens_file or ""))
        check_settings(settings.report)
    except (TokenError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    host = args.host or settings.report.host
    port = settings.report.port if args.port is None else args.port
    metrics_port = settings.metrics.report_server_port if args.metrics_port is None else args.metrics_port
    producer = _producer(args, settings, "yuqing-report", linger_ms=0)
    try:
        server = ReportServer(producer, tokens, settings.report, host=host, port=port,
                              metrics_host=settings.metrics.host, metrics_port=metrics_port or None)
    except OSError as exc:
        producer.close()
        raise CommandError(f"cannot listen on {host}:{port} or metrics {settings.metrics.host}:{metrics_port}: "
                           f"{exc.strerror}") from None
    stop = threading.Event()
    _stop_on_sigterm(stop)
    server.start()
    metrics_note = (f"; GET http://{settings.metrics.host}:{server.metrics_port}/metrics"
                    if server.metrics_port else "")
    print(f"report-server: POST http://{host}:{server.port}/reports -> {producer.topic} "
          f"({len(tokens)} token(s): {', '.join(tokens.names)}); GET /healthz, /readyz{metrics_note}",
          file=sys.stderr)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        producer.close()
    return 0
