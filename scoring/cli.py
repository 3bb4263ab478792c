"""`yuqing replay` and `yuqing job`: run the scoring job (bounded file, or live on Kafka)."""
from __future__ import annotations

import base64
import csv
import json
import sys
import time
from pathlib import Path

DEFAULT_WATCHLIST = Path(__file__).resolve().parent.parent / "data" / "watchlist.sample.yaml"


def _settings():
    from core.errors import CommandError
    from core.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        raise CommandError(f"bad configuration: {exc}") from None


def _job_config(settings, args, **overrides):
    from scoring.job import JobConfig
    from scoring.risk import RiskConfigError
    from scoring.sensors import SensorError
    from scoring.warmstart import BaselineFileError, load_baselines
    from scoring.watchlist import WatchlistError
    from core.errors import CommandError

    if not Path(args.watchlist).is_file():
        raise CommandError(f"watchlist {args.watchlist} does not exist")
    baselines = getattr(args, "baselines", None)
    try:
        if baselines:
            load_baselines(baselines)  # fail now, with a clear message, not inside a worker
            overrides["baselines_path"] = str(Path(baselines).resolve())
        return JobConfig.build(settings, args.watchlist, args.risk_config, args.sentiment_model, **overrides)
    # ValueError: a bad YUQING_JOB_* value or job setting (JobConfig.check), one line, not a traceback
    except (WatchlistError, RiskConfigError, BaselineFileError, SensorError, ValueError) as exc:
        raise CommandError(str(exc)) from None


def _flink_options(pairs: list[str] | None) -> dict[str, str]:
    """`-D key=value` (as in Flink's own CLI) into a dict of Flink configuration options."""
    from core.errors import CommandError

    options = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"-D {pair!r}: expected key=value, e.g. -D python.fn-execution.bundle.size=20000")
        options[key.strip()] = value.strip()
    return options


class Progress:
    """A one-line progress report on stderr (only when stderr is a terminal, or forced)."""

    def __init__(self, label: str, total: int | None = None, force: bool = False):
        self.label, self.total, self.count = label, total, 0
        self.enabled = force or sys.stderr.isatty()
        self.started = self.last = time.monotonic()

    def add(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if self.enabled and now - self.last >= 0.2:
            self.last = now
            self._draw(now)

    def _draw(self, now: float, end: str = "\r") -> None:
        rate = self.count / max(now - self.started, 1e-9)
        if self.total:
            width = 30
            done = int(width * min(self.count / self.total, 1.0))
            bar = "#" * done + "-" * (width - done)
            text = f"{self.label} [{bar}] {self.count:,}/{self.total:,} ({rate:,.0f}/s)"
        else:
            text = f"{self.label} {self.count:,} ({rate:,.0f}/s)"
        print(f"\x1b[2K{text}" if end == "\r" else text, end=end, file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.enabled:
            self._draw(time.monotonic(), end="\n")


def prepare_replay_csv(input_path: Path, csv_path: Path) -> tuple[int, int, int]:
    """JSONL (any order of published_at) -> CSV sorted by event time for the file source.

    Lines whose time cannot be read keep their bytes (base64) and sort with the start, so
    the job itself rejects them into the dead-letter output with the reason.
    Returns (records, min_ms, max_ms).
    """
    from core.post import PostError, parse_time

    rows: list[tuple[int, str, int]] = []
    undated: list[tuple[str, int]] = []
    with open(input_path, "rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            encoded = base64.b64encode(raw).decode("ascii")
            try:
                ts = int(parse_time(json.loads(raw)["published_at"], "published_at").timestamp() * 1000)
                rows.append((ts, encoded, line_no))
            except (ValueError, KeyError, TypeError, PostError, UnicodeDecodeError, RecursionError):
                undated.append((encoded, line_no))
    rows.sort(key=lambda r: (r[0], r[2]))
    first = rows[0][0] if rows else 0
    with open(csv_path, "w", newline="") as out:
        writer = csv.writer(out)
        for encoded, line_no in undated:
            writer.writerow((first, encoded, line_no))
        writer.writerows(rows)
    return len(rows) + len(undated), first, rows[-1][0] if rows else 0


def run_replay(args) -> int:
    from core.errors import CommandError

    settings = _settings()
    input_path = Path(args.input)
    if not input_path.is_file():
        raise CommandError(f"input file {input_path} does not exist")
    if args.warmup_hours < 0:
        raise CommandError("--warmup-hours must not be negative")
    replay_options = dict(metrics_port=0, udf_metrics_port=0, sensor="", checkpoint_interval_s=0,
                          parallelism=args.parallelism, python_mode=args.python_mode, python_worker=args.python_worker)
    _job_config(settings, args, **replay_options)  # a bad option fails before the input is read
    work = settings.state_dir / "tmp" / "replay"
    work.mkdir(parents=True, exist_ok=True)
    csv_path = work / f"replay-{int(time.time() * 1000)}.csv"
    total, first_ms, last_ms = prepare_replay_csv(input_path, csv_path)
    warmup_until_ms = first_ms + int(args.warmup_hours * 3_600_000) if args.warmup_hours and total else 0
    cfg = _job_config(settings, args, warmup_until_ms=warmup_until_ms, **replay_options)
    if warmup_until_ms:
        print(f"replay: the first {args.warmup_hours:g} h only teach the keys' baselines (no output)", file=sys.stderr)
    print(f"replay: {total:,} records from {input_path}; starting the scoring job", file=sys.stderr)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    alerts_out = open(args.alerts, "w", encoding="utf-8") if args.alerts else None
    dlq_out = open(args.dlq, "w", encoding="utf-8") if args.dlq else None
    reasons: dict[str, int] = {}
    progress = Progress("replay: windows scored up to", total=None, force=args.progress)
    counts = {"A": 0, "X": 0, "E": 0}
    from scoring.job import run_replay_file

    try:
        for tag, payload in run_replay_file(settings, cfg, csv_path):
            counts[tag] += 1
            if tag == "A":
                out.write(payload + "\n")
                progress.add()
            elif tag == "X" and alerts_out:
                alerts_out.write(payload + "\n")
            elif tag == "E":
                reason = json.loads(payload)["reason"]
                reasons[reason] = reasons.get(reason, 0) + 1
                if dlq_out:
                    dlq_out.write(payload + "\n")
    finally:
        progress.done()
        for handle in (out, alerts_out, dlq_out):
            if handle not in (None, sys.stdout):
                handle.close()
        csv_path.unlink(missing_ok=True)
    print(f"replay: {counts['A']:,} assessments, {counts['X']:,} alert events, "
          f"{counts['E']:,} rejected records", file=sys.stderr)
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:10]:
        print(f"replay:   rejected {n:,} x {reason}", file=sys.stderr)
    return 0


def run_job(args) -> int:
    settings = _settings()
    from scoring.job import current_end_offsets, run_live

    start = current_end_offsets(settings, settings.kafka.raw_topic) if args.from_now else None
    cfg = _job_config(settings, args, parallelism=args.parallelism, python_mode=args.python_mode,
                      python_worker=args.python_worker,
                      checkpoint_interval_s=args.checkpoint_interval, startup_offsets=start,
                      extra=_flink_options(args.flink_option))

    print(f"job: scoring {settings.kafka.raw_topic} on {settings.kafka.bootstrap} "
          f"(metrics on :{settings.metrics.job_port}); Ctrl-C stops", file=sys.stderr)
    run_live(settings, cfg, bounded=args.bounded, group_id=args.group_id, savepoint=args.from_savepoint,
             resume=args.resume and not args.from_now)
    return 0


def _jobctl(fn):
    """Run a jobctl action with its errors turned into one-line command errors."""
    from scoring.jobctl import JobCtlError
    from core.errors import CommandError

    try:
        return fn()
    except JobCtlError as exc:
        raise CommandError(str(exc)) from None


def run_submit(args) -> int:
    from scoring import jobctl
    from core.errors import CommandError

    settings = _settings()
    if args.parallelism < 1:
        raise CommandError("--parallelism must be at least 1")
    cfg = _job_config(settings, args)  # a bad watchlist or risk config fails here, not in the cluster
    job_args = ["--watchlist", str(Path(args.watchlist).resolve()), "--parallelism", str(args.parallelism),
                "--python-mode", args.python_mode, "--checkpoint-interval", str(args.checkpoint_interval),
                "--group-id", args.group_id, "--sensor", cfg.sensor]
    for flag, value in (("--risk-config", args.risk_config and str(Path(args.risk_config).resolve())),
                        ("--baselines", args.baselines and str(Path(args.baselines).resolve())),
                        ("--sentiment-model", args.sentiment_model), ("--topic", args.topic),
                        ("--metrics-port", args.metrics_port), ("--idle-timeout", args.idle_timeout)):
        if value is not None:
            job_args += [flag, str(value)]
    if args.bounded:
        job_args.append("--bounded")

    def go() -> str:
        url = jobctl.cluster_url(settings, args.cluster)
        print(f"job: submitting to {url} (parallelism {args.parallelism}"
              + (f", from savepoint {args.from_savepoint}" if args.from_savepoint else "") + ")", file=sys.stderr)
        job_id = jobctl.submit(settings, url, job_args, savepoint=args.from_savepoint, slots=args.parallelism,
                               timeout_s=args.timeout)
        if args.wait_running:
            jobctl.wait_all_tasks_running(url, job_id, timeout_s=args.timeout)
        return job_id

    print(_jobctl(go))
    return 0


def run_list(args) -> int:
    from scoring import jobctl

    settings = _settings()
    jobs = _jobctl(lambda: jobctl.list_jobs(jobctl.cluster_url(settings, args.cluster),
                                            settings.flink.request_timeout_s))
    if args.json:
        print(json.dumps([job.__dict__ for job in jobs]))
    for job in jobs if not args.json else ():
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.start_time_ms / 1000))
        print(f"{job.job_id}  {job.state:<10} {started}  {job.name}")
    return 0


def run_cancel(args) -> int:
    from scoring import jobctl

    settings = _settings()
    _jobctl(lambda: jobctl.cancel(jobctl.cluster_url(settings, args.cluster), args.job_id,
                                  settings.flink.request_timeout_s))
    print(f"job: cancelling {args.job_id}", file=sys.stderr)
    return 0


def run_stop(args) -> int:
    from scoring import jobctl

    settings = _settings()
    print(f"job: taking a savepoint of {args.job_id} in {args.savepoint}, then stopping it", file=sys.stderr)
    location = _jobctl(lambda: jobctl.stop_with_savepoint(
        jobctl.cluster_url(settings, args.cluster), args.job_id, args.savepoint, drain=args.drain,
        timeout_s=args.timeout, request_timeout_s=settings.flink.request_timeout_s))
    print(location)
    return 0


def _cluster_arg(parser) -> None:
    parser.add_argument("--cluster", metavar="URL",
                        help="Flink REST endpoint, http://HOST:PORT (default: the local cluster of "
                             "`yuqing stack up --flink-cluster`, flink.rest_port)")


def _common(parser) -> None:
    parser.add_argument("--watchlist", default=str(DEFAULT_WATCHLIST), help="watchlist YAML (CONTRACTS §2)")
    parser.add_argument("--risk-config", help="risk model YAML (docs/risk-model.md); default settings if absent")
    parser.add_argument("--sentiment-model", help="model file, or 'snownlp'; default: the built-in model")
    parser.add_argument("--baselines", metavar="FILE",
                        help="seed keys never seen before with these baselines (`yuqing baselines export` or "
                             "`yuqing baselines learn`), so a loud brand does not open with false alarms")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--python-mode", choices=("thread", "process"), default="thread",
                        help="PyFlink execution mode of the per-key window scorer (thread is faster)")
    parser.add_argument("--python-worker", choices=("loopback", "process"), default="loopback",
                        help="where the batched scoring UDF runs in the local mini-cluster: inside this "
                             "process (default: one interpreter whatever the parallelism), or one Python "
                             "worker process per slot (--parallelism N uses N cores, each worker loads "
                             "its own models; a worker that dies is restarted from the last checkpoint)")


def register(subparsers) -> None:
    replay = subparsers.add_parser(
        "replay", help="score a JSONL file of posts with the scoring job; print assessments",
        description="Run the live scoring job over a bounded file of posts (any order of published_at) "
                    "and write risk assessments (CONTRACTS §3) as JSON lines.")
    replay.add_argument("--input", required=True, help="posts, one JSON object per line")
    replay.add_argument("--output", help="assessments file (default: stdout)")
    replay.add_argument("--alerts", help="also write alert events (JSON lines) here")
    replay.add_argument("--dlq", help="also write rejected records (JSON lines) here")
    replay.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    replay.add_argument("--warmup-hours", type=float, default=0.0, metavar="N",
                        help="the first N hours of the input (from its earliest post) only teach each key its "
                             "normal: no assessments or alerts for them (a big brand with no history needs ~1 h)")
    _common(replay)
    replay.set_defaults(func=run_replay)

    job = subparsers.add_parser("job", help="run the live scoring job (Kafka in, Kafka out)")
    job_sub = job.add_subparsers(dest="job_action", metavar="ACTION")
    run = job_sub.add_parser("run", help="run the job in the local mini-cluster until interrupted")
    _common(run)
    run.add_argument("--bounded", action="store_true", help="stop at the end of what is in Kafka now")
    run.add_argument("--group-id", default="yuqing-scoring")
    run.add_argument("--checkpoint-interval", type=int, default=30, help="seconds (0: off)")
    run.add_argument("--from-savepoint", help="restore state from this savepoint or checkpoint")
    run.add_argument("--no-resume", dest="resume", action="store_false",
                     help="start with empty state instead of the newest retained checkpoint")
    run.add_argument("--from-now", action="store_true",
                     help="read only posts produced after start (demos); implies --no-resume")
    run.add_argument("-D", dest="flink_option", action="append", metavar="KEY=VALUE",
                     help="a Flink configuration option for this job (repeatable); overrides the job's own")
    run.set_defaults(func=run_job)

    submit = job_sub.add_parser(
        "submit", help="submit the job to a Flink cluster (detached); prints the job id",
        description="Submit scoring/job.py to a Flink session cluster with PyFlink's `flink run -d -py`. "
                    "The watchlist and risk config paths must be readable where the job runs.")
    _common(submit)
    _cluster_arg(submit)
    submit.add_argument("--from-savepoint", metavar="DIR", help="restore state from this savepoint (flink run -s)")
    submit.add_argument("--bounded", action="store_true", help="stop at the end of what is in Kafka now")
    submit.add_argument("--topic", help="raw posts topic (default: kafka.raw_topic)")
    submit.add_argument("--group-id", default="yuqing-scoring")
    submit.add_argument("--checkpoint-interval", type=int, default=30, help="seconds (0: off)")
    submit.add_argument("--metrics-port", type=int, help="first /metrics port of the workers (0: none; "
                                                        "default: metrics.job_port)")
    submit.add_argument("--idle-timeout", type=int,
                        help="seconds without records before a partition stops holding back the watermark "
                             "(default 5; raise it when catching up on a backlog: an idle-marked partition's "
                             "late records are dropped)")
    submit.add_argument("--wait-running", action="store_true", help="return only when every task runs")
    submit.add_argument("--timeout", type=float, default=300.0, help="seconds for the submission (and --wait-running)")
    # process mode on a session cluster: each job gets fresh Python workers, so an upgrade runs
    # the new code (thread mode keeps the first job's modules loaded in the TaskManager JVM)
    submit.set_defaults(func=run_submit, python_mode="process")

    listing = job_sub.add_parser("list", help="list the jobs of a Flink cluster")
    _cluster_arg(listing)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)

    cancel = job_sub.add_parser("cancel", help="cancel a job on a Flink cluster (no savepoint)")
    cancel.add_argument("job_id", metavar="JOB_ID")
    _cluster_arg(cancel)
    cancel.set_defaults(func=run_cancel)

    stop = job_sub.add_parser(
        "stop", help="stop a job with a savepoint (for an upgrade); prints the savepoint path",
        description="Stop-with-savepoint. Open windows and baselines go into the savepoint; "
                    "`yuqing job submit --from-savepoint PATH` continues from them.")
    stop.add_argument("job_id", metavar="JOB_ID")
    stop.add_argument("--savepoint", required=True, metavar="DIR", help="directory for the savepoint")
    stop.add_argument("--drain", action="store_true",
                      help="fire all open windows before stopping (only for a final stop, not an upgrade)")
    stop.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the savepoint")
    _cluster_arg(stop)
    stop.set_defaults(func=run_stop)
