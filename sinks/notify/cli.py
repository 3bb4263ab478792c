"""`yuqing notify`: run the notifier (register(subparsers) is called from sinks/cli.py)."""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
import signal
import sys
import threading


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "notify",
        help="page on-call: Alertmanager webhooks + Kafka alert events -> DingTalk/Feishu/WeCom/Slack",
        description="Receive Alertmanager webhooks (POST /alertmanager/<route>) and the job's `alerts` "
                    "topic, page once per brand/category/level, and deliver Chinese messages to the "
                    "channels in --config. Serves /metrics and /healthz on the same port. Webhook "
                    "POSTs must carry `Authorization: Bearer TOKEN`; the token comes from "
                    "YUQING_NOTIFY_TOKEN, the file in YUQING_NOTIFY_TOKEN_FILE or auth.token_file, or "
                    "the local stack's <state folder>/secrets/notify-token (mode 0600, created by `yuqing "
                    "stack up` or here if missing; Alertmanager's config names the same file).",
    )
    p.add_argument("--config", metavar="NOTIFY_YAML", help="channels, retry and Kafka options "
                   "(example: deploy/alertmanager/notify.example.yaml)")
    p.add_argument("--host", help="listen address (default: listen.host in the config, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default: settings metrics.notify_port)")
    p.add_argument("--token-file", metavar="PATH", help="file holding the webhook bearer token "
                   "(default: $YUQING_NOTIFY_TOKEN, $YUQING_NOTIFY_TOKEN_FILE, auth.token_file, the local stack's)")
    p.add_argument("--no-kafka", action="store_true", help="do not consume the alerts topic")
    p.add_argument("--check", action="store_true", help="validate the config, print the channels, exit")
    p.add_argument("--print-alertmanager-config", metavar="NOTIFY_URL", nargs="?", const="",
                   help="print alertmanager.yml with the webhook base URL and the token file filled in "
                        "and exit (default URL: http://127.0.0.1:<notify port>)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every message sent")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from core.errors import CommandError
    from core.config import ConfigError, load_settings

    from .config import (TOKEN_ENV, TOKEN_FILE_ENV, NotifyConfigError, load_notify_config, local_token_path,
                         ensure_token_file, read_token_file, render_alertmanager_config,
                         resolve_token)

    try:
        settings = load_settings()
        config = load_notify_config(args.config)
    except (ConfigError, NotifyConfigError) as exc:
        raise CommandError(str(exc)) from None
    port = args.port if args.port is not None else (config.port if config.port is not None else settings.metrics.notify_port)
    if args.host:
        config = replace(config, host=args.host)
    if args.print_alertmanager_config is not None:
        url = args.print_alertmanager_config or f"http://127.0.0.1:{port}"
        token_file = args.token_file or os.environ.get(TOKEN_FILE_ENV) or config.token_file \
            or local_token_path(settings.state_dir)
        try:
            sys.stdout.write(render_alertmanager_config(url, Path(token_file).resolve()))
        except NotifyConfigError as exc:
            raise CommandError(str(exc)) from None
        return 0
    try:
        token = read_token_file(Path(args.token_file)) if args.token_file else \
            resolve_token(config, state_dir=settings.state_dir)
    except NotifyConfigError as exc:
        raise CommandError(str(exc)) from None
    if token is None:  # the local stack: the same 0600 file `yuqing stack up` gives Alertmanager
        try:
            token = read_token_file(ensure_token_file(local_token_path(settings.state_dir)))
        except (OSError, NotifyConfigError) as exc:
            raise CommandError(f"no webhook token: set {TOKEN_ENV} or {TOKEN_FILE_ENV}, or auth.token_file in the "
                               f"config ({local_token_path(settings.state_dir)} cannot be created: {exc})") from None
    config = replace(config, token=token)
    if args.check:
        for c in config.channels:
            signed = "signed" if c.secret else "unsigned"
            print(f"{c.name}\t{c.kind}\t{signed}\troutes={','.join(c.routes)}\tbrands={','.join(c.brands) or '*'}")
        print(f"notify config OK: {len(config.channels)} channel(s)", file=sys.stderr)
        return 0

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    from sinks.metrics import default_metrics

    from .service import NotifyServer

    if args.no_kafka:
        config = replace(config, kafka=replace(config.kafka, enabled=False))
    if not config.channels:
        print("yuqing notify: warning: no channels configured; alerts will only be counted", file=sys.stderr)
    try:
        server = NotifyServer(
            config, default_metrics(), port=port,
            kafka_bootstrap=config.kafka.bootstrap or settings.kafka.bootstrap,
            kafka_topic=config.kafka.topic or settings.kafka.alerts_topic,
            kafka_client_options=settings.kafka.kafka_python_options())
    except OSError as exc:
        raise CommandError(f"cannot listen on {config.host}:{port}: {exc.strerror or exc}") from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    kafka = "off" if server.consumer is None else f"{server.consumer.bootstrap} topic {server.consumer.topic}"
    print(f"yuqing notify: listening on http://{config.host}:{server.port} "
          f"({len(config.channels)} channel(s), Kafka {kafka})", file=sys.stderr, flush=True)
    stop.wait()
    server.close()
    return 0
