"""`python -m bench.metrics_series`: the job's /metrics page at watchlist scale.

Generated assessments for 10,000 brands x 8 categories go into the window scorer's sensor
(sinks.metrics.JobMetricsSensor) and its page is fetched over HTTP as Prometheus does
(OpenMetrics Accept header), against a baseline of prometheus_client's labelled Gauges
(how the job exported the risk gauges before the series were bounded). Prints per scenario:
exported keys, page lines and bytes, scrape seconds (median of --scrapes; again with a
busy Python thread, as the window scorer's shares the exporter's GIL), CPU µs per
assessment (the generator's own cost taken off), and the ratio to the baseline. Pure Python: no stack needed.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
import urllib.request

from prometheus_client import CollectorRegistry, Gauge

from sinks.metrics import LEVEL_VALUES, RISK_GAUGES, Metrics, start_exporter

ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


class LabelledGauges:
    """The baseline: five prometheus_client Gauges labelled (brand, category), never pruned."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.gauges = [Gauge(name, doc, ("brand", "category"), registry=self.registry) for name, doc in RISK_GAUGES]

    def set_assessment(self, a: dict) -> None:
        values = (a["risk_score"], LEVEL_VALUES[a["level"]], a["influence"], a["severity"], a["volatility"])
        for gauge, value in zip(self.gauges, values):
            gauge.labels(a["brand"], a["category"]).set(value)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def assessments(brands: int, categories: int, spread_s: float, elevated_every: int, seed: int = 7):
    """(processing time, assessment) for every key once, in time order over spread_s."""
    rnd = random.Random(seed)
    keys = [(f"品牌{b:05d}", c) for b in range(brands) for c in
            ("privacy", "outage", "refund", "food", "legal", "security", "service", "pricing")[:categories]]
    rnd.shuffle(keys)
    for i, (brand, category) in enumerate(keys):
        level = "high" if elevated_every and i % elevated_every == 0 else "low"
        yield i * spread_s / len(keys), {
            "brand": brand, "category": category, "level": level, "risk_score": round(rnd.random(), 4),
            "influence": round(rnd.random(), 4), "severity": round(rnd.random(), 4),
            "volatility": round(rnd.random(), 4)}


def measure(target, registry, stream, stream_again, clock: Clock | None, scrapes: int) -> dict:
    started = time.process_time()
    n = 0
    for at, a in stream:
        if clock is not None:
            clock.now = at
        target.set_assessment(a)
        n += 1
    spent = time.process_time() - started
    started = time.process_time()
    for _ in stream_again:  # the generator's own cost, taken off
        pass
    set_us = (spent - (time.process_time() - started)) / n * 1e6
    exporter = start_exporter(0, registry=registry)
    try:
        times, body = _scrape(exporter.port, scrapes)
        stop = threading.Event()
        busy = threading.Thread(target=_busy_python, args=(stop,), daemon=True)
        busy.start()  # the window scorer's thread shares the GIL with the exporter's
        try:
            busy_times, _ = _scrape(exporter.port, scrapes)
        finally:
            stop.set()
            busy.join()
    finally:
        exporter.close()
    lines = body.count(b"\n")
    risk_lines = body.count(b"\nyuqing_risk_level{")
    return {"keys": risk_lines, "lines": lines, "bytes": len(body), "scrape_s": statistics.median(times),
            "busy_scrape_s": statistics.median(busy_times), "set_us": set_us}


def _scrape(port: int, scrapes: int) -> tuple[list[float], bytes]:
    times, body = [], b""
    for _ in range(scrapes):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept": ACCEPT})
        t0 = time.perf_counter()
        with urllib.request.urlopen(request, timeout=300) as response:
            body = response.read()
        times.append(time.perf_counter() - t0)
    return times, body


def _busy_python(stop: threading.Event) -> None:
    total = 0
    while not stop.is_set():
        for i in range(10_000):
            total += i * i


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brands", type=int, default=10_000)
    parser.add_argument("--categories", type=int, default=8, choices=range(1, 9))
    parser.add_argument("--scrapes", type=int, default=3)
    parser.add_argument("--ttl", type=float, default=1800.0, help="low keys' TTL in seconds (default 1800)")
    args = parser.parse_args(argv)
    scenarios = [
        # (name, spread of the assessments in processing time, 1 key in N elevated)
        ("burst: every key assessed within the TTL", 60.0, 100),
        ("a day: keys assessed evenly over 24 h", 86_400.0, 100),
    ]
    print(f"{args.brands:,} brands x {args.categories} categories, low-key TTL {args.ttl:g} s, "
          f"median of {args.scrapes} scrapes", file=sys.stderr)
    print("| scenario | exporter | keys on page | lines | bytes | scrape s | scrape s, busy thread | "
          "µs/assessment | scrape vs baseline |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, spread, every in scenarios:
        base = LabelledGauges()
        stream = lambda: assessments(args.brands, args.categories, spread, every)  # noqa: E731
        before = measure(base, base.registry, stream(), stream(), None, args.scrapes)
        clock = Clock()
        bounded = Metrics(CollectorRegistry(), low_key_ttl_s=args.ttl, clock=clock)
        after = measure(bounded, bounded.registry, stream(), stream(), clock, args.scrapes)
        for label, r in (("labelled Gauges (before)", before), ("RiskSeries (after)", after)):
            print(f"| {name} | {label} | {r['keys']:,} | {r['lines']:,} | {r['bytes']:,} | {r['scrape_s']:.3f} | "
                  f"{r['busy_scrape_s']:.3f} | {r['set_us']:.1f} | {r['scrape_s'] / before['scrape_s']:.3f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
