"""Sensors: how the scoring job reports what it does, without knowing who listens.

Why: the job must not import a metrics backend (scoring would then depend on sinks). It
calls a small sensor interface; the app layer plugs in an implementation (the Prometheus one
lives in sinks.metrics) by naming its factory as "module:attribute" in JobConfig.sensor,
because the job's functions run in Flink's Python workers, where only plain, picklable
configuration arrives. The factory is called once per worker and role ("score": the scoring
UDF; "window": the window scorer) as factory(role=..., host=..., port=...), port 0 meaning
"serve nothing". Without a sensor the job reports nothing (replays, tests).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Protocol

ROLES = ("score", "window")


class SensorError(ValueError):
    """A sensor spec that names nothing importable or callable (one line)."""


class JobSensor(Protocol):
    def on_batch(self, counts: Any) -> None:
        """One scored batch: `scoring.batch.BatchCounts` (by_platform, by_brand,
        rejected_reasons, lag_s)."""

    def on_event_time_clamped(self, n: int) -> None:
        """Records stamped later than the job's clock + max_ahead_s, clamped to that bound."""

    def on_assessment(self, record: dict[str, Any]) -> None:
        """One assessment as the job writes it (CONTRACTS §3)."""

    def on_alert(self, event: str, level: str) -> None:
        """One alert event written to the alerts topic."""


class NullSensor:
    """Reports nothing: the job's sensor when none is plugged in."""

    def on_batch(self, counts: Any) -> None:
        pass

    def on_event_time_clamped(self, n: int) -> None:
        pass

    def on_assessment(self, record: dict[str, Any]) -> None:
        pass

    def on_alert(self, event: str, level: str) -> None:
        pass


def sensor_spec(factory: Callable[..., Any]) -> str:
    """The "module:attribute" name of a factory, for JobConfig.sensor."""
    module, name = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if not module or not name or "<" in name:
        raise SensorError(f"sensor factory {factory!r} is not importable by name (define it at module level)")
    return f"{module}:{name}"


def resolve_factory(spec: str) -> Callable[..., Any]:
    """The callable a "module:attribute" spec names; SensorError with the reason if none."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SensorError(f"sensor {spec!r}: expected 'module:attribute'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise SensorError(f"sensor {spec!r}: cannot import {module_name} ({exc})") from None
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise SensorError(f"sensor {spec!r}: {module_name} has no {attr}")
    if not callable(target):
        raise SensorError(f"sensor {spec!r}: {attr} is not callable")
    return target


def check_sensor(spec: str) -> None:
    """Resolve a spec and let its factory check its own settings (a `check` attribute, if
    it has one, raising ValueError with one line) when the job is built: a bad setting
    found in a Flink worker would fail and restart the task over and over."""
    factory = resolve_factory(spec)
    check = getattr(factory, "check", None)
    if callable(check):
        try:
            check()
        except ValueError as exc:
            raise SensorError(f"sensor {spec}: {exc}") from None


def make_sensor(spec: str, role: str, host: str = "127.0.0.1", port: int = 0) -> JobSensor:
    """A sensor for one worker role; NullSensor for an empty spec."""
    if role not in ROLES:
        raise SensorError(f"sensor role {role!r}: expected one of {', '.join(ROLES)}")
    if not spec:
        return NullSensor()
    return resolve_factory(spec)(role=role, host=host, port=port)


_plugged = ""


def plug(factory: Callable[..., Any] | None) -> None:
    """The app layer's choice of sensor for the jobs this process builds (None: none)."""
    global _plugged
    _plugged = sensor_spec(factory) if factory is not None else ""


def plugged() -> str:
    """The plugged sensor's spec ("" when the app plugged none)."""
    return _plugged
