"""Live post -> page: a crisis fed in real time, timed from the post that tips it over.

`bench/latency.py` times what the product adds once a window has closed (its clock starts at
a post that closes the window on purpose). A live crisis has no such post: its posts carry
event time = now, and the closed-window path alone would wait for the out-of-orderness plus
up to a slide before the window holding them closes. This phase measures what a live crisis
really waits.

Each trial, for a never-seen brand:
1. ~`burst` crisis posts are produced one by one at a steady rate over `feed_s` seconds,
   each stamped (published_at and Kafka timestamp) with the wall clock at which it is sent;
   no closing post, nothing in the past;
2. before the trial the bench works out, with the engine's own functions (matcher,
   sentiment model, `post_features`, `Accumulator`, `engine.score_window` on a fresh key
   state), which post makes one of the brand's keys reach the paging level (high): the
   tipping post. Its producer ack starts the clock;
3. the clock stops when the webhook behind `yuqing notify` receives the first firing page
   naming the brand. A page before the tipping post's ack is counted apart (the job saw
   the crisis sooner than the reference: not a measurement).
"""
from __future__ import annotations

import json
import threading
import time

from bench import posts as bench_posts
from bench.harness import Workbench, check_alive, say
from bench.latency import Inbox, start_notify_and_job, write_brand_watchlist
from bench.report import seconds_summary

PAGE_LEVEL = "high"  # notify's min_level in this phase


def tipping_index(posts: list[dict], send_ms: list[int], watchlist, risk, predict, playbooks) -> int | None:
    """Index of the first post after which one of its keys scores `PAGE_LEVEL` or more in
    the open window, the way the job's early firing scores it (fresh key state)."""
    from scoring.engine import KeyState, score_window
    from scoring.features import Accumulator, post_features
    from scoring.matching import Matcher
    from core.levels import LEVELS
    from core.post import parse_post_strict

    matcher = Matcher(watchlist)
    parsed = [parse_post_strict(json.dumps(p, ensure_ascii=False).encode()) for p in posts]
    matches = [matcher.match(p.text, p.title) for p in parsed]
    texts = [p.text for p, m in zip(parsed, matches) if m]
    scores = iter(predict(texts) if texts else ())
    slide_ms, size_ms = risk.window.slide_s * 1000, risk.window.size_s * 1000
    accs: dict[tuple[str, str], Accumulator] = {}
    for i, (post, match) in enumerate(zip(parsed, matches)):
        if not match:
            continue
        sentiment = float(next(scores))
        row = post_features(post, sentiment < risk.features.negative_below, sentiment, match, risk.features,
                            send_ms[i])
        end = send_ms[i] - send_ms[i] % slide_ms + slide_ms
        for key in dict.fromkeys(match.pairs):
            acc = accs.setdefault(key, Accumulator())
            acc.add(row)
            stats = acc.stats(key[0], key[1], end - size_ms, end)
            assessment, _, _ = score_window(stats, KeyState(), watchlist, risk, playbooks)
            if LEVELS.index(assessment.raw_level) >= LEVELS.index(PAGE_LEVEL):
                return i
    return None


def run(wb: Workbench, trials: int = 25, burst: int = 200, feed_s: float = 20.0, warmup: int = 1,
        progress=say) -> dict:
    from kafka import KafkaProducer

    from core.levels import load_playbooks
    from scoring.risk import load_risk_config
    from scoring.sentiment import load_model

    settings = wb.settings
    topics = wb.make_topics("live", raw_partitions=1)
    brands = bench_posts.trial_brands(trials + warmup, bench_posts.run_prefix(int(time.time()) + 7))
    phase_dir = wb.run_dir / "live"
    wl_path, watchlist = write_brand_watchlist(phase_dir, brands)
    risk, playbooks, predict = load_risk_config(None), load_playbooks(), load_model().predict_proba
    inbox = Inbox()
    pipeline = wb.pipeline("live", wb.env(topics))
    alive = check_alive(pipeline)
    producer = None
    results: list[dict] = []
    try:
        start_notify_and_job(wb, pipeline, alive, inbox, phase_dir, wl_path,
                             notify_group=f"bench-{wb.tag}-live-notify", job_group=f"bench-{wb.tag}-live")
        time.sleep(5)  # the source's first fetch of the (empty) topic
        progress(f"live: job and notify are up; {warmup} warm-up + {trials} trials, ~{burst} posts over {feed_s:.0f} s")
        producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks=1, linger_ms=0,
                                 request_timeout_ms=15_000, max_block_ms=30_000, client_id="yuqing-bench-live")
        for i, brand in enumerate(brands):
            results.append(_trial(producer, topics["raw"], inbox, watchlist, risk, predict, playbooks, brand, i,
                                  burst, feed_s, warmup=i < warmup, alive=alive, progress=progress))
    finally:
        if producer is not None:
            producer.close(timeout=10)
        pipeline.stop()
        inbox.close()
    counted = [t for t in results if not t["warmup"] and t["seconds"] is not None and t["seconds"] >= 0]
    early = [t for t in results if not t["warmup"] and t["seconds"] is not None and t["seconds"] < 0]
    if not counted:
        raise RuntimeError("live: no valid trial")
    measured = [t["seconds"] for t in counted]
    return {
        "live_post_to_page_trials": len(measured),
        "live_post_to_page_early_pages": len(early),
        **seconds_summary("live_post_to_page", measured),
        "live_feed_posts_per_trial": burst,
        "live_feed_s": feed_s,
        "live_trial_list": results,
    }


def _trial(producer, topic, inbox, watchlist, risk, predict, playbooks, brand, i, burst, feed_s, *, warmup,
           alive, progress) -> dict:
    interval_s = feed_s / burst
    now_ms = int(time.time() * 1000)
    posts = bench_posts.crisis_burst(watchlist, brand, "privacy", now_ms - now_ms % 60_000, posts=burst, seed=i)
    # planned send times, 1.5 s ahead so that working out the tipping post does not delay them
    start_ms = now_ms + 1_500
    send_ms = [start_ms + int(j * interval_s * 1000) for j in range(len(posts))]
    tip = tipping_index(posts, send_ms, watchlist, risk, predict, playbooks)
    if tip is None:
        raise RuntimeError(f"live trial {i}: the reference never reaches {PAGE_LEVEL} with {len(posts)} posts")
    acked: dict[str, float] = {}
    t_begin = time.monotonic()

    def feed() -> None:
        for j, post in enumerate(posts):
            delay = send_ms[j] / 1000.0 - time.time()
            if delay > 0:
                time.sleep(delay)
            stamp = int(time.time() * 1000)  # event time = the moment it is sent
            post = dict(post, published_at=bench_posts.format_time(stamp))
            future = producer.send(topic, key=post["id"].encode(), timestamp_ms=stamp,
                                   value=json.dumps(post, ensure_ascii=False).encode())
            if j == tip:
                future.get(timeout=15)
                acked["at"] = time.monotonic()
        producer.flush(timeout=30)

    feeder = threading.Thread(target=feed, name=f"live-feed-{i}", daemon=True)
    feeder.start()
    got = inbox.wait_page(brand, since=t_begin, timeout_s=180 if warmup else 90, firing_only=True)
    feeder.join(timeout=feed_s + 60)
    if got is None:
        alive()
        raise RuntimeError(f"live trial {i}: no page for {brand}")
    at, payload = got
    notice = payload.get("notice") or {}
    seconds = None if "at" not in acked else round(at - acked["at"], 3)
    if seconds is None:  # paged before the tipping post was even sent
        seconds = round(at - (t_begin + (send_ms[tip] - start_ms) / 1000.0 + 1.5), 3)
    trial = {"brand": brand, "posts": len(posts), "tipping_post": tip, "seconds": seconds,
             "tip_after_s": round(tip * interval_s, 2), "level": notice.get("level"),
             "category": notice.get("category"), "warmup": warmup}
    progress(f"  live trial {i}{' (warm-up)' if warmup else ''}: {brand} tipped by post {tip + 1}/{len(posts)}; "
             f"paged {seconds:.2f} s after its ack")
    return trial
