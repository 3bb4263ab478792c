"""The PyFlink scoring job: a thin adapter over the framework-free core.

Why Table API + a vectorised (pandas) UDF: one Python call per record caps PyFlink near
3.7k posts/s per core (FACTS.md). Here Python runs once per Arrow batch
(`scoring.batch.PostScorer`) and returns typed columns (a ROW per post), and everything per
record after that stays on the JVM with nothing to parse: routing dead letters and scored
posts to Kafka, and the sliding event-time window aggregates (`features.WINDOW_AGGREGATES`),
computed per slide. Only the aggregated rows - one per key and window, a few per minute -
come back to Python, into a keyed process function that keeps each key's baseline and alert
state in Flink state and calls `engine.score_window`, the same function the plain-Python
engine uses.

    Kafka posts.raw (raw bytes, record timestamp = published_at, watermarks per partition)
      -> yq_score (pandas UDF, batched) -> one DataStream that every consumer below shares
      -> kind E: posts.dlq | kind S: posts.scored, and UNNEST(key ids)
      -> HOP windows (size, slide) per key id (aggregated per slide, with posts counted per
         slide position so that the newest slide's count needs no second window)
      -> to_data_stream -> key_by(brand, category) -> WindowScorer (ValueState, timers)
      -> risk.assessments (+ side output: key alerts -> key_by(brand) -> IncidentTracker -> alerts)
"""
from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scoring.batch import FEATURE_COLUMNS, OUTPUT_COLUMNS, US, key_ids
from scoring.features import (SLIDE_POSITION_COLUMN, WINDOW_AGGREGATES, newest_slide_posts, slide_count_aggregates,
                              slide_count_name)
from core.config import Settings
from scoring.sensors import check_sensor, make_sensor, plugged


@dataclass(frozen=True)
class JobConfig:
    """Everything the job's Python functions need; plain data so that it pickles."""

    watchlist_path: str
    risk_config_path: str | None = None
    sentiment_model: str | None = None  # path, "snownlp", or None for the default model
    state_dir: str = ".yuqing"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: no exporter (replay); the window scorer's metrics
    udf_metrics_port: int = 0  # the scoring UDF's metrics
    # "module:factory" of the job's sensor (scoring/sensors.py), which the app layer plugs in
    # (the Prometheus one: sinks.metrics:JobMetricsSensor); "": the job reports nothing
    sensor: str = ""
    parallelism: int = 1
    # posts per Arrow batch: 5000 cost the JVM ~7% less CPU per post than 2000 (per-batch
    # work on both sides); a partial batch still goes when the bundle time is up
    arrow_batch_size: int = 5000
    # posts in flight to the Python worker: several Arrow batches, so that the JVM keeps
    # reading and sending while Python scores (a bundle of one batch made them take turns)
    bundle_size: int = 50000
    bundle_time_ms: int = 200
    idle_timeout_s: int = 30  # a partition silent this long stops holding windows back
    checkpoint_interval_s: int = 30
    # checkpoints at watchlist scale (docs/deploy.md, "Checkpoints"): one that takes longer
    # than checkpoint_timeout_s is given up; checkpoint_min_pause_s of processing between two;
    # up to tolerable_failed_checkpoints failures in a row before the job restarts (Flink's
    # default is 0: a single slow or failed checkpoint restarts the whole job)
    checkpoint_timeout_s: int = 600
    checkpoint_min_pause_s: int = 10
    tolerable_failed_checkpoints: int = 5
    python_mode: str = "thread"  # the window scorer's; PyFlink runs pandas UDFs in process mode only
    # local mini-cluster only: "loopback" runs the UDF inside the client process (one
    # interpreter whatever the parallelism); "process" starts a Python worker per slot (own
    # interpreter and GIL: --parallelism 2 uses both cores, for ~0.6 GiB more memory); a dead
    # worker fails its task, which restarts from the checkpoint (docs/bench.md, "Python workers")
    python_worker: str = "loopback"
    topic: str = "posts.raw"
    window_size_s: int = 600
    window_slide_s: int = 60
    out_of_orderness_s: int = 30
    # early firing (docs/risk-model.md, "Early firing"): every this many seconds of
    # processing time the open window of each key with recent posts is scored provisionally,
    # and a provisional score that raises the key's level pages at once; 0: off (replays)
    early_fire_s: int = 5
    # no record's event time may be later than the job's clock when it reads it plus this
    # (a post "from the future" would move the watermark on and make everyone else late);
    # later ones are clamped to it and counted; 0: no bound
    max_ahead_s: int = 300
    # per-brand incidents on the alerts topic (scoring/incidents.py) instead of key-level
    # records; replays always; a live job unless YUQING_JOB_INCIDENTS=0 (docs/alerting.md)
    incidents: bool = True
    examples: int = 3
    # warm start (docs/risk-model.md, "Warm start"): keys' baselines seeded from a baseline
    # file at their first window; windows ending at or before warmup_until_ms (epoch ms, 0:
    # none) only teach the keys' baselines: no assessment, no alert
    baselines_path: str | None = None
    warmup_until_ms: int = 0
    # "partition:0,offset:42;partition:1,offset:7": start there instead of the group's offsets
    startup_offsets: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, watchlist: str | Path, risk_config: str | Path | None = None,
              sentiment_model: str | None = None, **overrides: Any) -> "JobConfig":
        from scoring.risk import load_risk_config
        from scoring.watchlist import load_watchlist

        load_watchlist(watchlist)  # fail now, with a clear message, not inside a worker
        risk = load_risk_config(risk_config)
        values = dict(
            watchlist_path=str(Path(watchlist).resolve()),
            risk_config_path=str(Path(risk_config).resolve()) if risk_config else None,
            sentiment_model=sentiment_model, state_dir=str(settings.state_dir),
            metrics_host=settings.metrics.host, metrics_port=settings.metrics.job_port,
            udf_metrics_port=settings.metrics.job_udf_port, sensor=plugged(),
            topic=settings.kafka.raw_topic, window_size_s=risk.window.size_s,
            window_slide_s=risk.window.slide_s, out_of_orderness_s=risk.window.out_of_orderness_s,
            examples=risk.alerts.examples,
            early_fire_s=_env_seconds("YUQING_JOB_EARLY_FIRE_S", cls.early_fire_s),
            max_ahead_s=_env_seconds("YUQING_JOB_MAX_AHEAD_S", cls.max_ahead_s),
            incidents=_env_switch("YUQING_JOB_INCIDENTS", cls.incidents),
        )
        values.update(overrides)
        cfg = cls(**values)
        cfg.check()
        return cfg

    def check(self) -> None:
        """One-line messages for settings the SQL plan cannot take, and for a sensor that
        names nothing (better here than in every Flink worker)."""
        if self.sensor:
            check_sensor(self.sensor)
        if self.checkpoint_timeout_s <= 0 or self.checkpoint_min_pause_s < 0 or self.tolerable_failed_checkpoints < 0:
            raise ValueError("checkpoint_timeout_s must be positive seconds, checkpoint_min_pause_s and "
                             "tolerable_failed_checkpoints 0 or more")
        if self.early_fire_s < 0 or self.max_ahead_s < 0:
            raise ValueError("early_fire_s and max_ahead_s must be 0 (off) or positive seconds")
        if self.early_fire_s and (self.window_size_s % self.early_fire_s or self.early_fire_s > self.window_slide_s):
            raise ValueError(f"early_fire_s ({self.early_fire_s}) must divide the window size ({self.window_size_s} s) "
                             f"and be at most the slide ({self.window_slide_s} s)")

    @property
    def window_slides(self) -> int:
        """Slides per window (risk config validation makes the size a multiple of the slide)."""
        return self.window_size_s // self.window_slide_s


# The job's SQL plan, for its checkpoints: Flink cannot restore a checkpoint into a changed
# SQL plan (its operators' state no longer maps), so each plan keeps its checkpoints in a
# folder of its own and a newer job starts fresh instead of failing to start. Change it
# whenever the SQL changes shape (not for a watchlist edit: key ids are hashes of names).
PLAN_VERSION = "plan-4"

def _env_seconds(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}: expected whole seconds, got {text!r}") from None
    if value < 0:
        raise ValueError(f"{name}: expected 0 (off) or positive seconds, got {value}")
    return value


def _env_switch(name: str, default: bool) -> bool:
    """An on/off environment setting: 1/true/yes/on or 0/false/no/off; unset or empty: default.
    Anything else is refused (a typo must not silently turn a feature off)."""
    text = (os.environ.get(name) or "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}: expected 1 or 0 (on/off), got {text[:20]!r}")


# ------------------------------------------------------------------ worker-side helpers

_worker_lock = threading.Lock()
_worker_cache: dict[str, Any] = {}


def _worker_sensor(cfg: JobConfig, role: str):
    """One sensor per operator role and worker. The scoring UDF and the window scorer may
    run in separate Python interpreters of one process (thread mode) or in separate
    processes, so each role has its own sensor, with its own port for a /metrics exporter."""
    port = cfg.udf_metrics_port if role == "score" else cfg.metrics_port
    with _worker_lock:
        sensor = _worker_cache.get(("sensor", role, cfg.sensor))
        if sensor is None:
            sensor = _worker_cache[("sensor", role, cfg.sensor)] = make_sensor(cfg.sensor, role, cfg.metrics_host, port)
        return sensor


def _load_sentiment(cfg: JobConfig):
    os.environ.setdefault("YUQING_STATE_DIR", cfg.state_dir)
    from scoring.sentiment import load_model

    model = load_model(cfg.sentiment_model)
    return model.predict_proba


def load_scorer(cfg: JobConfig):
    with _worker_lock:
        scorer = _worker_cache.get(("scorer", cfg.watchlist_path, cfg.sentiment_model))
        if scorer is None:
            from scoring.batch import PostScorer
            from scoring.risk import load_risk_config
            from scoring.watchlist import load_watchlist

            risk = load_risk_config(cfg.risk_config_path)
            scorer = PostScorer(load_watchlist(cfg.watchlist_path), _load_sentiment(cfg), risk.features,
                                slide_ms=cfg.window_slide_s * 1000, window_slides=cfg.window_slides)
            _worker_cache[("scorer", cfg.watchlist_path, cfg.sentiment_model)] = scorer
        return scorer


def _sql_type(text: str):
    from pyflink.table import DataTypes

    if text.startswith("ARRAY<"):
        return DataTypes.ARRAY(_sql_type(text[6:-1]))
    return {"STRING": DataTypes.STRING(), "BYTES": DataTypes.BYTES(), "BIGINT": DataTypes.BIGINT()}[text]


def make_score_udf(cfg: JobConfig, base64_input: bool = False):
    """The vectorised UDF: (raw, partition, offset, ts) -> ROW(OUTPUT_COLUMNS) per post."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import ScalarFunction, udf

    class ScorePosts(ScalarFunction):
        def __init__(self, config: dict[str, Any], b64: bool):
            self.config = config
            self.b64 = b64

        def is_deterministic(self):
            # Not a claim about the result: a deterministic call may be inlined into every
            # expression that uses its result, and the planner then runs it once per use.
            return False

        def open(self, function_context):
            self.cfg = JobConfig(**self.config)
            self.scorer = load_scorer(self.cfg)
            self.sensor = _worker_sensor(self.cfg, "score")

        def eval(self, raw, partition, offset, ts, record_ts):
            import base64

            import pandas as pd

            values = list(raw)
            if self.b64:
                values = [base64.b64decode(v) if v is not None else b"" for v in values]
            # event time as Flink windows it (the record timestamp), as epoch ms
            epoch = pd.Timestamp(0, tz="UTC") if ts.dt.tz is not None else pd.Timestamp(0)
            stamps = ((ts - epoch) // pd.Timedelta(milliseconds=1)).tolist()
            ahead = int((record_ts > ts).sum())  # event times the source clamped (max_ahead_s)
            if ahead:
                self.sensor.on_event_time_clamped(ahead)
            out, counts = self.scorer.score_batch(values, list(partition), list(offset), topic=self.cfg.topic,
                                                  timestamps_ms=stamps)
            self.sensor.on_batch(counts)
            return pd.DataFrame({name: pd.Series(column, dtype=object) for name, column in out.columns.items()})

    input_type = DataTypes.STRING() if base64_input else DataTypes.BYTES()
    result_type = DataTypes.ROW([DataTypes.FIELD(name, _sql_type(sql)) for name, sql in OUTPUT_COLUMNS])
    return udf(ScorePosts(asdict(cfg), base64_input),
               input_types=[input_type, DataTypes.INT(), DataTypes.BIGINT(), DataTypes.TIMESTAMP_LTZ(3),
                            DataTypes.TIMESTAMP_LTZ(3)],
               result_type=result_type, func_type="pandas", deterministic=False)


def _make_window_scorer(cfg: JobConfig, alerts_tag):
    from pyflink.common import Types
    from pyflink.datastream import KeyedProcessFunction
    from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

    class WindowScorer(KeyedProcessFunction):
        """Per (brand, category): WindowStats -> Assessment (+ AlertEvent), state in Flink.

        Two states: the key's (baseline, alert, history, examples), decoded and written once
        per timer however many windows it scores, and the windows waiting for the watermark,
        one map entry each (kept in one JSON value, a backlog's arrivals and timers
        re-encoded it per window: most of this operator's CPU)."""

        def __init__(self, config: dict[str, Any]):
            self.config = config

        def open(self, runtime_context):
            from core.levels import load_playbooks
            from scoring.risk import load_risk_config
            from scoring.watchlist import load_watchlist

            self.cfg = JobConfig(**self.config)
            self.risk = load_risk_config(self.cfg.risk_config_path)
            self.watchlist = load_watchlist(self.cfg.watchlist_path)
            from scoring.batch import key_ids

            self.key_names = {key: pair for pair, key in key_ids(self.watchlist).items()}
            self.playbooks = load_playbooks()
            self.seeds = {}
            if self.cfg.baselines_path:
                from scoring.warmstart import load_baselines

                self.seeds = load_baselines(self.cfg.baselines_path)
            self.state = runtime_context.get_state(ValueStateDescriptor("key_state", Types.STRING()))
            # window end (epoch ms) -> the window's row: one entry per window, so a watermark
            # that jumps over many slides (a backlog) costs one entry each, not a list re-encoded
            # per window
            self.waiting = runtime_context.get_map_state(
                MapStateDescriptor("waiting_windows", Types.LONG(), Types.STRING()))
            self.sensor = _worker_sensor(self.cfg, "window")

        def process_element(self, row, ctx):
            """Each window waits in state until the watermark passes its end, and the timer
            then scores what is due in window order (one key's windows are not guaranteed
            to arrive in order, and silence between them is filled at that point)."""
            values = row.as_dict()
            if "key_id" in values:  # the window query carries the key's id (window_sql)
                pair = self.key_names.get(values.pop("key_id"))
                if pair is None:  # a restored window of a key no longer in the watchlist
                    return
                values["brand"], values["category"] = pair
            slide_ms = self.cfg.window_slide_s * 1000
            if values.pop("provisional", 0):
                yield from self._provisional(values, slide_ms, ctx)
                return
            end_ms = int(values["window_end_ms"])
            values["last_slide_posts"] = newest_slide_posts(values, end_ms, slide_ms, self.cfg.window_slides)
            for position in range(self.cfg.window_slides):
                values.pop(slide_count_name(position), None)
            self.waiting.put(end_ms, json.dumps(values, ensure_ascii=False))
            ctx.timer_service().register_event_time_timer(end_ms)

        def _provisional(self, values, slide_ms, ctx):
            """An early firing: the key's open window as it stands now (processing time).

            Scored with the engine's `score_window` against the key's state, whose result
            state is thrown away: no baseline, history or hysteresis moves on a window that
            is still open. It is published only when it raises the key's level above both
            the level of its closed windows and any earlier provisional raise (a page, a
            window before the watermark would allow one); the closed window decides later
            (`_settle_provisional`)."""
            from dataclasses import replace

            from scoring.alerts import RANK
            from scoring.batch import decode_example
            from scoring.engine import score_window
            from scoring.features import WindowStats

            size_ms = self.cfg.window_size_s * 1000
            fired_ms = int(values["window_end_ms"])
            # the event-time window that holds the newest posts and will close next
            end = fired_ms - fired_ms % slide_ms + slide_ms
            values["window_start_ms"], values["window_end_ms"] = end - size_ms, end
            values["last_slide_posts"] = newest_slide_posts(values, end, slide_ms, self.cfg.window_slides)
            for position in range(self.cfg.window_slides):
                values.pop(slide_count_name(position), None)
            example = decode_example(values.pop("example", None))
            stats = WindowStats.from_row(values)
            stored = json.loads(self.state.value() or "{}")
            if stored.get("last_end", -1) >= end or end <= self.cfg.warmup_until_ms:
                return  # that window is closed and scored: its result stands (or a warm-up's)
            key = self._key_state(stored, ctx)
            held = stored.get("provisional")
            paged = key.alert.level
            if held and RANK[held["level"]] > RANK[paged]:
                paged = held["level"]
                key = replace(key, alert=replace(key.alert, level=paged,
                                                 first_detected_ms=held.get("first_detected_ms")))
            examples = _merge_examples(stored.get("examples", []), example, stats, self.cfg.examples)
            assessment, event, _ = score_window(stats, key, self.watchlist, self.risk, self.playbooks,
                                                [e["example"] for e in examples],
                                                computed_at=datetime.now(timezone.utc).isoformat())
            if event is None or event.event != "raised":
                return
            stored["provisional"] = {"level": event.level, "window_end_ms": end,
                                     "first_detected_ms": event.first_detected_ms}
            self.state.update(json.dumps(stored, ensure_ascii=False))
            record = dict(assessment.to_dict(), provisional=True)
            # the risk gauges too, so that the Prometheus -> Alertmanager path pages as early;
            # the closed window sets them again when it is scored
            self.sensor.on_assessment(record)
            yield json.dumps(record, ensure_ascii=False)
            alert = dict(event.to_dict(), provisional=True)
            self.sensor.on_alert(alert["event"], alert["level"])
            yield alerts_tag, json.dumps(alert, ensure_ascii=False)

        def on_timer(self, timestamp, ctx):
            """Score the windows due by `timestamp` in order; then, for an elevated key
            with no window by `timestamp`, the empty ones, so that a key whose posts
            stopped can fall back (and stop paging)."""
            from scoring.batch import decode_example
            from scoring.features import WindowStats

            stored = json.loads(self.state.value() or "{}")
            stored["key"] = self._key_state(stored, ctx)  # decoded once, encoded once
            due_ends = sorted(end for end in self.waiting.keys() if end <= timestamp)
            due = [json.loads(self.waiting.get(end)) for end in due_ends]
            for end in due_ends:
                self.waiting.remove(end)
            # plan-3 checkpoints of earlier releases kept the waiting windows in the key's state
            changed = "pending" in stored
            for values in stored.pop("pending", None) or []:
                if int(values["window_end_ms"]) <= timestamp:
                    due.append(values)
                else:
                    self.waiting.put(int(values["window_end_ms"]), json.dumps(values, ensure_ascii=False))
            due.sort(key=lambda v: int(v["window_end_ms"]))
            brand, category = ctx.get_current_key().split(US, 1)
            for values in due:  # freshly decoded: ours to change
                example = decode_example(values.pop("example", None))
                stats = WindowStats.from_row(values)
                # the watermark may have jumped over slides with no window for this key
                for out in self._silence(stored, brand, category, stats.window_end_ms, ctx):
                    changed = True
                    yield out
                yield from self._score(stored, stats, example, ctx)
                changed = True
            for out in self._silence(stored, brand, category, timestamp + 1, ctx):
                changed = True
                yield out
            if changed:
                stored["key"] = stored["key"].to_dict()
                self.state.update(json.dumps(stored, ensure_ascii=False))

        def _key_state(self, stored, ctx):
            """The key's state; a key never seen starts from its seed baseline, if any."""
            from scoring.engine import KeyState

            if stored.get("key") is None and self.seeds:
                seed = self.seeds.get(tuple(ctx.get_current_key().split(US, 1)))
                if seed is not None:
                    return KeyState(baseline=seed)
            return KeyState.from_dict(stored.get("key"))

        def _silence(self, stored, brand, category, before_end_ms, ctx):
            """Empty windows of an elevated key, from its last window up to before_end_ms
            (the engine's `_fill_silence`)."""
            from scoring.features import WindowStats

            if "last_end" not in stored:
                return
            slide_ms, size_ms = self.cfg.window_slide_s * 1000, self.cfg.window_size_s * 1000
            end = stored["last_end"] + slide_ms
            while stored["key"].alert.level != "low" and end < before_end_ms:
                yield from self._score(stored, WindowStats(brand, category, end - size_ms, end), None, ctx)
                end += slide_ms

        def _score(self, stored, stats, example, ctx):
            """Scores one window into `stored` (the caller writes it back once)."""
            from scoring.engine import score_window

            examples = _merge_examples(stored.get("examples", []), example, stats, self.cfg.examples)
            learn_only = stats.window_end_ms <= self.cfg.warmup_until_ms
            assessment, event, new_state = score_window(
                stats, stored["key"], self.watchlist, self.risk, self.playbooks,
                [e["example"] for e in examples],
                computed_at=datetime.now(timezone.utc).isoformat(), learn_only=learn_only)
            stored.update({"key": new_state, "examples": examples, "last_end": stats.window_end_ms})
            if learn_only:
                return
            if new_state.alert.level != "low":
                ctx.timer_service().register_event_time_timer(stats.window_end_ms + self.cfg.window_slide_s * 1000)
            record = assessment.to_dict()
            self.sensor.on_assessment(record)
            yield json.dumps(record, ensure_ascii=False)
            if event is not None:
                alert = event.to_dict()
                self.sensor.on_alert(alert["event"], alert["level"])
                yield alerts_tag, json.dumps(alert, ensure_ascii=False)
            withdrawn = self._settle_provisional(stored, assessment)
            if withdrawn is not None:
                self.sensor.on_alert(withdrawn["event"], withdrawn["level"])
                yield alerts_tag, json.dumps(withdrawn, ensure_ascii=False)

        def _settle_provisional(self, stored, assessment):
            """The closed window that a provisional raise was about has been scored: if its
            level reaches the raised one, the raise is confirmed (nothing to send: the closed
            window's own "raised" event repeats the page, which consumers deduplicate);
            otherwise the provisional raise is withdrawn with a "lowered" event back to the
            closed window's level, so the page resolves."""
            from scoring.alerts import RANK, AlertEvent

            held = stored.get("provisional")
            if not held or assessment.window_end_ms < held["window_end_ms"]:
                return None
            del stored["provisional"]
            if RANK[assessment.level] >= RANK[held["level"]]:
                return None
            event = AlertEvent(
                event="lowered", brand=assessment.brand, category=assessment.category, level=assessment.level,
                previous_level=held["level"], at_ms=assessment.window_end_ms,
                first_detected_ms=held.get("first_detected_ms") or held["window_end_ms"],
                window_start_ms=assessment.window_start_ms, window_end_ms=assessment.window_end_ms,
                posts=assessment.posts, negative_ratio=assessment.negative_ratio, influence=assessment.influence,
                severity=assessment.severity, volatility=assessment.volatility, risk_score=assessment.risk_score,
                examples=(), playbook=self.playbooks[assessment.level])
            return dict(event.to_dict(), provisional=True, withdrawn=True)

    return WindowScorer(asdict(cfg))


def _make_incident_tracker(cfg: JobConfig):
    from pyflink.common import Types
    from pyflink.datastream import KeyedProcessFunction
    from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

    class IncidentTracker(KeyedProcessFunction):
        """Per brand: the window scorers' key-level alert records -> incident records
        (scoring/incidents.py, the functions the engine calls), state in Flink.

        A key record waits for the next watermark (an event-time timer at its time), so that
        the records of one watermark step are applied in event-time order, ties by category,
        as the engine applies them (keys fire in their own order within a step); a timer at
        the end of the quiet period closes the incident."""

        def __init__(self, config: dict[str, Any]):
            self.config = config

        def open(self, runtime_context):
            from scoring.incidents import IncidentConfig
            from scoring.risk import load_risk_config

            job = JobConfig(**self.config)
            self.incident_cfg = IncidentConfig(quiet_s=load_risk_config(job.risk_config_path).alerts.incident_quiet_s)
            self.state = runtime_context.get_state(ValueStateDescriptor("incident", Types.STRING()))
            # "at ms|category|n" -> the key record, until the watermark passes its time
            self.waiting = runtime_context.get_map_state(
                MapStateDescriptor("waiting_key_alerts", Types.STRING(), Types.STRING()))
            # a sequence number for the waiting entries' keys (two records of one time and
            # category stay apart): O(1) per record, not a walk over the waiting map
            self.waiting_seq = runtime_context.get_state(ValueStateDescriptor("waiting_seq", Types.LONG()))

        def process_element(self, value, ctx):
            from scoring.incidents import IncidentError, _check

            try:
                record = json.loads(value)
                at_ms = _check(record)[4]
            except (IncidentError, ValueError) as exc:  # never expected from our own scorer: passed on, marked
                yield json.dumps({"incident_error": str(exc)[:200], "record": value[:4096]}, ensure_ascii=False)
                return
            if record.get("provisional"):
                yield from self._apply_now(record, ctx)  # an early page must not wait for the window
                return
            n = self.waiting_seq.value() or 0
            self.waiting_seq.update(n + 1)
            self.waiting.put(f"{at_ms:015d}|{record['category']}|{n:09d}", value)
            ctx.timer_service().register_event_time_timer(at_ms)

        def _load_state(self):
            from scoring.incidents import IncidentState

            return IncidentState.from_dict(json.loads(self.state.value() or "{}"))

        def _save_and_emit(self, state, out, ctx):
            """Store the brand's state, arm its close timer, then pass on what the step produced."""
            from scoring.incidents import close_deadline_ms

            self.state.update(json.dumps(state.to_dict(), ensure_ascii=False))
            deadline = close_deadline_ms(state, self.incident_cfg)
            if deadline is not None:
                ctx.timer_service().register_event_time_timer(deadline)
            for item in out:
                yield json.dumps(item, ensure_ascii=False)

        def _apply_now(self, record, ctx):
            from scoring.incidents import on_key_alert

            state, out = on_key_alert(self._load_state(), record, self.incident_cfg)
            yield from self._save_and_emit(state, out, ctx)

        def on_timer(self, timestamp, ctx):
            from scoring.incidents import on_key_alert, on_time

            state = self._load_state()
            waiting = list(self.waiting.keys())
            due = sorted(k for k in waiting if int(k.split("|", 1)[0]) <= timestamp)
            out = []
            for k in due:
                record = json.loads(self.waiting.get(k))
                self.waiting.remove(k)
                state, got = on_time(state, int(k.split("|", 1)[0]), self.incident_cfg)
                out.extend(got)
                state, got = on_key_alert(state, record, self.incident_cfg)
                out.extend(got)
            if due and len(due) == len(waiting):
                self.waiting_seq.clear()  # nothing waits: the numbering starts again
            state, got = on_time(state, timestamp, self.incident_cfg)
            out.extend(got)
            yield from self._save_and_emit(state, out, ctx)

    return IncidentTracker(asdict(cfg))


def _merge_examples(kept: list[dict], example: dict | None, stats, limit: int) -> list[dict]:
    """The best examples seen in the current window: SQL gives the top one per window, the
    state remembers earlier windows' tops, so an alert can show up to `limit` distinct posts."""
    merged = [e for e in kept if e["ms"] >= stats.window_start_ms]
    if example is not None and all(e["example"].get("id") != example.get("id") for e in merged):
        merged.append({"ms": stats.window_end_ms, "rank": stats.negative_posts / max(stats.posts, 1),
                       "example": example})
    merged.sort(key=lambda e: (e["rank"], e["ms"]), reverse=True)
    return merged[:limit]


# ------------------------------------------------------------------ the pipeline (client side)

def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _interval(seconds: int) -> str:
    """A day-to-second interval literal (plain SECOND literals stop at 99)."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{secs:02d}' DAY TO SECOND"


def key_rows_sql(source_view: str) -> str:
    """One row per (post, key id) of the scored posts."""
    features = ", ".join(f"`{name}`" for name, _ in FEATURE_COLUMNS)
    return (f"SELECT ts, pt, k AS key_id, {features}, {SLIDE_POSITION_COLUMN}, example FROM {source_view} "
            "CROSS JOIN UNNEST(keys) AS T(k) WHERE kind = 'S'")


def key_name_sql(ids: dict[tuple[str, str], int], part: int) -> str:
    """The brand (part 0) or category (part 1) of a key id, as SQL."""
    cases = " ".join(f"WHEN {key} THEN {_sql_literal(pair[part])}" for pair, key in ids.items())
    return f"CASE w.key_id {cases} END"


def _epoch_ms(column: str) -> str:
    return f"UNIX_TIMESTAMP(DATE_FORMAT({column}, 'yyyy-MM-dd HH:mm:ss')) * 1000"


def recent_rows_sql(cfg: JobConfig, rows: str = "key_rows") -> str:
    """The key rows whose event time is within one window size of the job's clock: what
    the early firing aggregates (a backlog's posts never reach it)."""
    return (f"SELECT * FROM {rows} WHERE ts > CAST(CURRENT_TIMESTAMP - {_interval(cfg.window_size_s)} "
            "AS TIMESTAMP_LTZ(3))")


def window_sql(cfg: JobConfig, ids: dict[tuple[str, str], int], rows: str = "key_rows",
               early: bool | None = None, recent_rows: str = "recent_key_rows") -> str:
    """Sliding windows per key, with the posts of each slide position (the scorer picks the
    newest slide's count: `features.newest_slide_posts`).

    No aggregate names a window bound, so Flink aggregates each post once into its slide
    (slicing) instead of once per window it belongs to (`features.slide_count_aggregates`).

    With early firing (`cfg.early_fire_s`), a second, processing-time HOP of the same size
    sliding every `early_fire_s` seconds over the posts whose event time is inside the
    window size of now (`recent_rows`, a view of `recent_rows_sql`) gives each key's open
    window as it stands; those rows come with `provisional` = 1 (docs/risk-model.md, "Early
    firing"). Posts of a backlog (older than a window) never reach it, so a replay or a
    catch-up costs it next to nothing.
    """
    if early is None:
        early = bool(cfg.early_fire_s)
    closed = _window_select(cfg, ids, f"TABLE(HOP(TABLE {rows}, DESCRIPTOR(ts), {_interval(cfg.window_slide_s)}, "
                                      f"{_interval(cfg.window_size_s)}))", provisional=0)
    if not early:
        return closed
    provisional = _window_select(cfg, ids, f"TABLE(HOP(TABLE {recent_rows}, DESCRIPTOR(pt), {_interval(cfg.early_fire_s)}, "
                                           f"{_interval(cfg.window_size_s)}))", provisional=1)
    return f"{closed} UNION ALL {provisional}"


def _window_select(cfg: JobConfig, ids: dict[tuple[str, str], int], window_table: str, provisional: int) -> str:
    aggregates = {**WINDOW_AGGREGATES, **slide_count_aggregates(cfg.window_slides)}
    columns = ", ".join(f"{expr} AS `{name}`" for name, expr in aggregates.items())
    keys = "key_id, window_start, window_end"
    hop = f"SELECT {keys}, {columns}, MAX(example) AS example FROM {window_table} GROUP BY {keys}"
    return (
        # epoch ms on the JVM: Java time objects do not cross into embedded Python cleanly.
        # The key id, not its names: a CASE per key made the SQL (and the planner's code
        # generation) grow with the watchlist, 5 MiB at 10,000 brands; the window scorer
        # names the key (issue #19)
        "SELECT w.key_id AS key_id, "
        f"{_epoch_ms('w.window_start')} AS window_start_ms, "
        f"{_epoch_ms('w.window_end')} AS window_end_ms, "
        + ", ".join(f"w.`{name}`" for name in aggregates)
        + f", w.example, {provisional} AS provisional FROM ({hop}) w"
    )


def kafka_source_ddl(settings: Settings, cfg: JobConfig, group_id: str, bounded: bool) -> str:
    options = {
        "connector": "kafka",
        "topic": cfg.topic,
        "properties.bootstrap.servers": settings.kafka.bootstrap,
        "properties.group.id": group_id,
        "properties.auto.offset.reset": "earliest",
        "properties.request.timeout.ms": str(int(settings.kafka.request_timeout_s * 1000)),
        "scan.startup.mode": "group-offsets",
        "format": "raw",
    }
    options.update({f"properties.{k}": v for k, v in kafka_auth_properties(settings).items()})
    if cfg.startup_offsets:
        options["scan.startup.mode"] = "specific-offsets"
        options["scan.startup.specific-offsets"] = cfg.startup_offsets
    if bounded:
        options["scan.bounded.mode"] = "latest-offset"
    return (
        "CREATE TEMPORARY TABLE posts_raw (`raw` BYTES, "
        "rts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL, "
        "kpartition INT METADATA FROM 'partition' VIRTUAL, "
        "koffset BIGINT METADATA FROM 'offset' VIRTUAL, "
        f"ts AS {event_time_sql('rts', cfg.max_ahead_s)}, "
        f"WATERMARK FOR ts AS ts - {_interval(cfg.out_of_orderness_s)}) WITH ("
        + ", ".join(f"{_sql_literal(k)} = {_sql_literal(v)}" for k, v in options.items()) + ")"
    )


def event_time_sql(record_ts: str, max_ahead_s: int) -> str:
    """The event time Flink windows a record by: its timestamp, but never later than the
    job's clock plus `max_ahead_s` (issue: one post stamped 50 minutes ahead moved the
    watermark and every later post of a real crisis was dropped as late). The bound is
    evaluated where the source assigns watermarks (per partition), so neither the watermark
    nor the windows ever see the unclamped time; the scoring UDF counts the clamped ones."""
    if not max_ahead_s:
        return record_ts
    bound = f"CAST(CURRENT_TIMESTAMP + {_interval(max_ahead_s)} AS TIMESTAMP_LTZ(3))"
    return f"CASE WHEN {record_ts} > {bound} THEN {bound} ELSE {record_ts} END"


def file_source_ddl(csv_path: Path, cfg: JobConfig) -> str:
    """A replay's posts are history: their times are kept as they are (no clock bound)."""
    return (
        "CREATE TEMPORARY TABLE posts_raw (ts_ms BIGINT, `raw` STRING, koffset BIGINT, "
        "ts AS TO_TIMESTAMP_LTZ(ts_ms, 3), rts AS TO_TIMESTAMP_LTZ(ts_ms, 3), kpartition AS CAST(NULL AS INT), "
        f"WATERMARK FOR ts AS ts - {_interval(cfg.out_of_orderness_s)}) WITH ("
        f"'connector' = 'filesystem', 'path' = {_sql_literal(str(csv_path))}, 'format' = 'csv')"
    )


def kafka_auth_properties(settings: Settings) -> dict[str, str]:
    """The Kafka client's listener auth (SASL/TLS) for the JVM connector; none for PLAINTEXT.
    The connector is the shaded SQL jar: its Kafka classes (the login module too) are relocated."""
    if settings.kafka.security_protocol == "PLAINTEXT":
        return {}
    return settings.kafka.java_client_properties("org.apache.flink.kafka.shaded.")


def kafka_sink_ddl(name: str, topic: str, settings: Settings) -> str:
    auth = "".join(f", {_sql_literal('properties.' + k)} = {_sql_literal(v)}"
                   for k, v in kafka_auth_properties(settings).items())
    return (
        f"CREATE TEMPORARY TABLE {name} (v BYTES) WITH ('connector' = 'kafka', "
        f"'topic' = {_sql_literal(topic)}, 'properties.bootstrap.servers' = {_sql_literal(settings.kafka.bootstrap)}, "
        "'format' = 'raw', 'sink.delivery-guarantee' = 'at-least-once', "
        # scored posts are the bulk of what the job writes: fewer, larger produce requests
        # cost the job's sender thread and the broker far less CPU (alerts take another sink)
        "'properties.linger.ms' = '50', 'properties.batch.size' = '524288'" + auth + ")"
    )


def current_end_offsets(settings: Settings, topic: str) -> str:
    """The topic's end offsets now, as Flink's specific-offsets option: a job started with
    them reads exactly what is produced from this moment on."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap,
                             request_timeout_ms=int(settings.kafka.request_timeout_s * 1000),
                             **settings.kafka.kafka_python_options())
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise ValueError(f"topic {topic} does not exist on {settings.kafka.bootstrap}")
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(partitions)])
    finally:
        consumer.close()
    return ";".join(f"partition:{tp.partition},offset:{offset}" for tp, offset in sorted(ends.items()))


def latest_checkpoint(checkpoint_dir: Path) -> str | None:
    """The newest complete retained checkpoint (…/<job id>/chk-N with _metadata), if any."""
    if not checkpoint_dir.is_dir():
        return None
    complete = [meta.parent for meta in checkpoint_dir.glob("*/chk-*/_metadata")]
    if not complete:
        return None
    return str(max(complete, key=lambda p: p.stat().st_mtime))


def checkpoint_options(cfg: JobConfig) -> dict[str, str]:
    """Flink options that keep a slow or failed checkpoint from restarting the job: at
    10,000 brands x 8 categories checkpoints took 3-59 s and several failed per run."""
    return {
        "execution.checkpointing.timeout": f"{cfg.checkpoint_timeout_s} s",
        "execution.checkpointing.min-pause": f"{cfg.checkpoint_min_pause_s} s",
        "execution.checkpointing.tolerable-failed-checkpoints": str(cfg.tolerable_failed_checkpoints),
    }


def create_environments(settings: Settings, cfg: JobConfig, checkpoint_dir: Path | None = None,
                        savepoint: str | None = None):
    from pyflink.table import StreamTableEnvironment

    from scoring.flink_env import stream_env

    extra = {
        "python.fn-execution.arrow.batch.size": str(cfg.arrow_batch_size),
        "python.fn-execution.bundle.size": str(max(cfg.bundle_size, cfg.arrow_batch_size)),
        "python.fn-execution.bundle.time": str(cfg.bundle_time_ms),
        "table.exec.source.idle-timeout": f"{cfg.idle_timeout_s} s",
        "table.local-time-zone": "UTC",
        "pipeline.name": "yuqing-scoring",
        # chained operators hand records on without a defensive copy each (the copies of
        # the ~1 KB scored strings were a fifth of the JVM's time); SQL operators and the
        # Python operators never keep a record they were handed
        "pipeline.object-reuse": "true",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "3",
        **checkpoint_options(cfg),
        # a failed task (e.g. a crashed Python worker) restarts from the last checkpoint
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "20",
        "restart-strategy.fixed-delay.delay": "3 s",
    }
    if savepoint:
        extra["execution.state-recovery.path"] = savepoint
        if not cfg.incidents:  # incidents switched off: the checkpoint's `incidents` state has no operator
            extra["execution.state-recovery.ignore-unclaimed-state"] = "true"
    if cfg.python_worker not in ("process", "loopback"):
        raise ValueError(f"python_worker: expected process or loopback, got {cfg.python_worker!r}")
    from scoring.flink_env import in_cluster_client

    # read by PyFlink when the job starts (not a configuration option); children of this
    # process never inherit it (yuqing.pipeline.child_env). A cluster always runs workers
    # as processes, and refuses loopback.
    if in_cluster_client():
        os.environ.pop("_python_worker_execution_mode", None)
    else:
        os.environ["_python_worker_execution_mode"] = cfg.python_worker
    extra.update(cfg.extra)
    env = stream_env(settings, cfg.parallelism, python_mode=cfg.python_mode,
                     checkpoint_interval_ms=cfg.checkpoint_interval_s * 1000 if cfg.checkpoint_interval_s else None,
                     checkpoint_dir=checkpoint_dir, extra_config=extra)
    t_env = StreamTableEnvironment.create(env)
    for key, value in extra.items():
        t_env.get_config().set(key, value)
    return env, t_env


def _to_internal_data_stream(t_env, table):
    """`to_data_stream` in Flink's internal row format (RowData), not as `Row` objects.

    The plain conversion turns every post's ~20 columns into boxed Java objects and
    `from_data_stream` turns them back (a quarter of the JVM's time in a profile); bridged
    to RowData both conversions are the identity. PyFlink does not expose the bridging
    argument, hence the Java call."""
    from pyflink.datastream import DataStream
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    row_data = jvm.java.lang.Class.forName("org.apache.flink.table.data.RowData", True,
                                           jvm.java.lang.Thread.currentThread().getContextClassLoader())
    data_type = table._j_table.getResolvedSchema().toPhysicalRowDataType().bridgedTo(row_data)
    return DataStream(t_env._j_tenv.toDataStream(table._j_table, data_type))


def create_scored_views(t_env, cfg: JobConfig, base64_input: bool) -> None:
    """The scoring UDF over `posts_raw`, as the views `scored` and `scored_parts` (one
    column per OUTPUT_COLUMNS entry, `ts` the record's event time)."""
    from pyflink.table import Schema

    t_env.create_temporary_function("yq_score", make_score_udf(cfg, base64_input))
    # Every consumer below (dead letters, scored posts, windows) must read ONE scoring
    # operator. Planned as views, the statement set and the windows' to_data_stream were
    # optimised apart and each got its own Kafka source and its own UDF: every post was read
    # and scored twice. A DataStream in between is one physical node that all of them share;
    # the source's timestamps and watermarks pass through it (SOURCE_WATERMARK).
    scored = t_env.sql_query("SELECT ts, yq_score(`raw`, kpartition, koffset, ts, rts) AS r FROM posts_raw")
    scored_stream = _to_internal_data_stream(t_env, scored)
    t_env.create_temporary_view("scored", t_env.from_data_stream(
        scored_stream, Schema.new_builder().column_by_metadata("rowtime", "TIMESTAMP_LTZ(3)")
        .column_by_expression("pt", "PROCTIME()")  # the early firing's clock
        .watermark("rowtime", "SOURCE_WATERMARK()").build()))
    columns = ", ".join(f"r.`{name}` AS `{name}`" for name, _ in OUTPUT_COLUMNS)
    t_env.execute_sql(f"CREATE TEMPORARY VIEW scored_parts AS SELECT rowtime AS ts, pt, {columns} FROM scored")


def build_scoring(env, t_env, cfg: JobConfig, base64_input: bool):
    """Common part: UDF, views, windows, keyed scorer. Returns (assessments, alerts)."""
    from pyflink.common import Types
    from pyflink.datastream import OutputTag

    create_scored_views(t_env, cfg, base64_input)
    t_env.execute_sql(f"CREATE TEMPORARY VIEW key_rows AS {key_rows_sql('scored_parts')}")
    if cfg.early_fire_s:
        t_env.execute_sql(f"CREATE TEMPORARY VIEW recent_key_rows AS {recent_rows_sql(cfg, 'key_rows')}")
    from scoring.watchlist import load_watchlist

    ids = key_ids(load_watchlist(cfg.watchlist_path))
    windows = t_env.sql_query(window_sql(cfg, ids))
    alerts_tag = OutputTag("alerts", Types.STRING())
    key_names = {key: US.join(pair) for pair, key in ids.items()}  # the same keys as before
    assessments = (
        t_env.to_data_stream(windows)
        .key_by(lambda row: key_names.get(row["key_id"], ""), key_type=Types.STRING())
        .process(_make_window_scorer(cfg, alerts_tag), output_type=Types.STRING())
        .name("risk-scorer").uid("risk-scorer")
    )
    # per brand: the key-level alert transitions -> incidents (scoring/incidents.py)
    alerts = assessments.get_side_output(alerts_tag)
    if cfg.incidents:
        alerts = (
            alerts.key_by(lambda v: json.loads(v).get("brand") or "", key_type=Types.STRING())
            .process(_make_incident_tracker(cfg), output_type=Types.STRING())
            .name("incidents").uid("incidents")
        )
    return assessments, alerts


def run_live(settings: Settings, cfg: JobConfig, bounded: bool = False, group_id: str = "yuqing-scoring",
             checkpoint_dir: Path | None = None, savepoint: str | None = None, wait: bool = True,
             topics: dict[str, str] | None = None, resume: bool = False):
    """The live job: Kafka in, Kafka out. `bounded` stops at the offsets current at start.
    `resume` restores the newest retained checkpoint (baselines, open windows, offsets)."""
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream.connectors.base import DeliveryGuarantee
    from pyflink.datastream.connectors.kafka import KafkaRecordSerializationSchema, KafkaSink

    out = {"dlq": settings.kafka.dlq_topic, "scored": settings.kafka.scored_topic,
           "assessments": settings.kafka.assessments_topic, "alerts": settings.kafka.alerts_topic}
    out.update(topics or {})
    from scoring.flink_env import in_cluster_client

    if checkpoint_dir is None and not in_cluster_client():  # on a cluster: its own checkpoint storage
        checkpoint_dir = settings.state_dir / "flink" / "checkpoints" / PLAN_VERSION
    if resume and savepoint is None and checkpoint_dir is not None:
        savepoint = latest_checkpoint(checkpoint_dir)
        if savepoint:
            print(f"job: resuming from checkpoint {savepoint}", file=sys.stderr)
    env, t_env = create_environments(settings, cfg, checkpoint_dir, savepoint)
    t_env.execute_sql(kafka_source_ddl(settings, cfg, group_id, bounded))
    assessments, alerts = build_scoring(env, t_env, cfg, base64_input=False)
    t_env.execute_sql(kafka_sink_ddl("dlq_sink", out["dlq"], settings))
    t_env.execute_sql(kafka_sink_ddl("scored_sink", out["scored"], settings))
    statements = t_env.create_statement_set()
    statements.add_insert_sql("INSERT INTO dlq_sink SELECT payload FROM scored_parts WHERE kind = 'E'")
    statements.add_insert_sql("INSERT INTO scored_sink SELECT payload FROM scored_parts WHERE kind = 'S'")
    statements.attach_as_datastream()

    def sink(topic: str):
        builder = KafkaSink.builder().set_bootstrap_servers(settings.kafka.bootstrap)
        for key, value in kafka_auth_properties(settings).items():
            builder = builder.set_property(key, value)
        return (builder
                .set_record_serializer(KafkaRecordSerializationSchema.builder().set_topic(topic)
                                       .set_value_serialization_schema(SimpleStringSchema()).build())
                .set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE).build())

    assessments.sink_to(sink(out["assessments"])).name("risk.assessments").uid("sink-assessments")
    alerts.sink_to(sink(out["alerts"])).name("alerts").uid("sink-alerts")
    if wait:
        return env.execute("yuqing-scoring")
    return env.execute_async("yuqing-scoring")


def run_replay_file(settings: Settings, cfg: JobConfig, csv_path: Path):
    """Bounded replay of a prepared CSV (ts_ms, raw base64, line): yields tagged results.

    Tags: "A" assessment JSON, "X" alert JSON, "E" dead-letter JSON.
    """
    from pyflink.common import Types

    from dataclasses import replace

    # a replay reproduces the closed windows (CONTRACTS §3): no early firing on the clock
    cfg = replace(cfg, early_fire_s=0, incidents=True)
    env, t_env = create_environments(settings, cfg)
    t_env.execute_sql(file_source_ddl(csv_path, cfg))
    assessments, alerts = build_scoring(env, t_env, cfg, base64_input=True)
    rejects = t_env.to_data_stream(t_env.sql_query("SELECT payload FROM scored_parts WHERE kind = 'E'"))
    # tag-x is not chained to the incidents operator: PyFlink gives a chain its head's uid,
    # and a chained "incidents" collided with the tracker's own ("Hash collision on user-specified ID")
    tagged = (
        assessments.map(lambda v: "A" + v, output_type=Types.STRING()).name("tag-a").uid("tag-a")
        .union(alerts.map(lambda v: "X" + v, output_type=Types.STRING()).name("tag-x").uid("tag-x").disable_chaining(),
               rejects.map(lambda r: "E" + r[0].decode("utf-8"), output_type=Types.STRING()).name("tag-e").uid("tag-e"))
    )
    with tagged.execute_and_collect("yuqing-replay") as results:
        for item in results:
            yield item[0], item[1:]


def main(argv: list[str] | None = None) -> int:
    """Entry point for `flink run -py scoring/job.py` (a session cluster, or a JobManager in
    application mode) and `python -m scoring.job` (the local mini-cluster).

    Defaults come from the settings (YUQING_* environment); group id and parallelism also
    from YUQING_JOB_GROUP_ID / YUQING_JOB_PARALLELISM, so a deployment can set them there."""
    import argparse

    from core.config import load_settings

    settings = load_settings()
    parser = argparse.ArgumentParser(prog="scoring.job", description="Run the Yuqing scoring job (live, Kafka).")
    parser.add_argument("--watchlist", required=True)
    parser.add_argument("--risk-config")
    parser.add_argument("--sentiment-model")
    parser.add_argument("--baselines", help="seed baselines of keys never seen (scoring/warmstart.py)")
    parser.add_argument("--parallelism", type=int, default=int(os.environ.get("YUQING_JOB_PARALLELISM", "1")))
    parser.add_argument("--bounded", action="store_true", help="stop at the offsets that are current at start")
    parser.add_argument("--topic", default=settings.kafka.raw_topic, help="raw posts topic")
    parser.add_argument("--group-id", default=os.environ.get("YUQING_JOB_GROUP_ID", "yuqing-scoring"))
    parser.add_argument("--python-mode", choices=("thread", "process"), default="thread")
    parser.add_argument("--checkpoint-interval", type=int, default=30, help="seconds (0: off)")
    parser.add_argument("--checkpoint-dir", help="checkpoint storage (default: the cluster's, or the state folder)")
    parser.add_argument("--metrics-port", type=int, default=settings.metrics.job_port,
                        help="first port for the window scorers' /metrics (0: none)")
    parser.add_argument("--udf-metrics-port", type=int, default=settings.metrics.job_udf_port,
                        help="first port for the scoring UDF workers' /metrics (0: none)")
    parser.add_argument("--sensor", default=plugged(),
                        help="'module:factory' of the job's metrics sensor (scoring/sensors.py); Yuqing's commands "
                             "pass the Prometheus one, sinks.metrics:JobMetricsSensor (default here: none)")
    parser.add_argument("--from-savepoint", help="restore from this savepoint (or use `flink run -s`)")
    parser.add_argument("--idle-timeout", type=int, default=JobConfig.idle_timeout_s,
                        help="seconds without records before a partition stops holding back the watermark")
    args = parser.parse_args(argv)
    if args.parallelism < 1:
        parser.error("--parallelism must be at least 1")
    try:
        cfg = JobConfig.build(settings, args.watchlist, args.risk_config, args.sentiment_model,
                              parallelism=args.parallelism, topic=args.topic, python_mode=args.python_mode,
                              checkpoint_interval_s=args.checkpoint_interval, metrics_port=args.metrics_port,
                              udf_metrics_port=args.udf_metrics_port, idle_timeout_s=args.idle_timeout,
                              sensor=args.sensor,
                              baselines_path=str(Path(args.baselines).resolve()) if args.baselines else None)
    except ValueError as exc:  # a bad watchlist, risk config, sensor or option: one line
        parser.error(str(exc))
    checkpoint_dir = Path(args.checkpoint_dir).resolve() if args.checkpoint_dir else None
    run_live(settings, cfg, bounded=args.bounded, group_id=args.group_id, checkpoint_dir=checkpoint_dir,
             savepoint=args.from_savepoint)
    return 0


if __name__ == "__main__":
    # `flink run -py scoring/job.py` runs this file as a script; run the importable module
    # instead, so that cloudpickle ships the job's functions by reference, not by value.
    from scoring.job import main as module_main

    sys.exit(module_main())
