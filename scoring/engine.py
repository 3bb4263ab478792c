"""Reference streaming engine in plain Python (no Flink), and the per-window scoring step.

`score_window` is the one function both this engine and the Flink job call for each
closed window of a (brand, category) key: WindowStats + KeyState -> Assessment, optional
AlertEvent, new KeyState. The engine reproduces Flink's event-time semantics: HOP windows
aligned to the epoch, a bounded-out-of-orderness watermark (max event time - delay), a
window fires when the watermark reaches its end, a post is dropped as late only when every
window it belongs to has fired, and only windows holding at least one post are emitted.
Windows are built from per-slide panes so each post is added once, not once per window.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from scoring.alerts import AlertEvent, AlertState, has_evidence, next_level
from scoring.features import Accumulator, WindowStats, post_features
from scoring.matching import Matcher, MatchResult
from core.levels import Playbook, load_playbooks
from scoring.risk import Assessment, Baseline, RiskConfig, assess, category_weight, level_for, update_baseline
from scoring.watchlist import Watchlist
from core.post import Post

SentimentFn = Callable[[Sequence[Post]], Sequence[float]]


def text_scorer(fn: Callable[[Sequence[str]], Sequence[float]]) -> SentimentFn:
    """Adapt a batch text scorer (probability positive per text) to the engine."""
    return lambda posts: fn([p.text for p in posts])


@dataclass(frozen=True)
class KeyState:
    """Everything a key carries between windows (one Flink ValueState, as a dict)."""

    baseline: Baseline = field(default_factory=Baseline)
    alert: AlertState = field(default_factory=AlertState)
    history: tuple[int, ...] = ()  # posts per slide, oldest first, ending at history_end_ms
    history_end_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline.to_dict(), "alert": self.alert.to_dict(),
                "history": list(self.history), "history_end_ms": self.history_end_ms}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "KeyState":
        data = data or {}
        return cls(Baseline.from_dict(data.get("baseline")), AlertState.from_dict(data.get("alert")),
                   tuple(map(int, data.get("history") or ())), data.get("history_end_ms"))


HISTORY_SLIDES = 120  # two hours of one-minute slides feed the forecast


def extend_history(state: KeyState, stats: WindowStats, slide_ms: int) -> tuple[tuple[int, ...], int]:
    """Append the window's newest slide, with zeros for slides in which no window fired."""
    history = list(state.history)
    if state.history_end_ms is not None and stats.window_end_ms > state.history_end_ms:
        gap = (stats.window_end_ms - state.history_end_ms) // slide_ms - 1
        history.extend([0] * min(max(gap, 0), HISTORY_SLIDES))
    elif state.history_end_ms is not None:
        return state.history, state.history_end_ms  # an older window: history already has it
    history.append(stats.last_slide_posts)
    return tuple(history[-HISTORY_SLIDES:]), stats.window_end_ms


def hour_posts_before(history: tuple[int, ...], history_end_ms: int | None, window_end_ms: int,
                      slide_s: int) -> int:
    """Posts of the key in the hour up to `window_end_ms`, from its per-slide history (the
    evidence of persistence, scoring/alerts.py has_evidence)."""
    if history_end_ms is None:
        return 0
    skip = max(0, (history_end_ms - window_end_ms) // (slide_s * 1000))  # an older window: history is ahead
    slides = max(1, 3600 // slide_s)
    newest = len(history) - skip
    return sum(history[max(0, newest - slides):max(0, newest)])


def alert_forecast(stats: WindowStats, history: tuple[int, ...], baseline: Baseline, level: str,
                   watchlist: Watchlist | None, cfg: RiskConfig) -> dict[str, Any] | None:
    """The short-term forecast an alert carries: volume next 1 h / 6 h, chance of the next level."""
    from scoring.forecast import forecast, posts_to_reach

    if not history:
        return None
    levels = ("low", "medium", "high")
    next_level = levels[levels.index(level) + 1] if level != "high" else None
    target = None
    if next_level is not None:
        target = posts_to_reach(stats, baseline, category_weight(stats.category, watchlist, cfg.severity),
                                next_level, cfg)
    result = forecast(history, stats.window_end_ms, window_minutes=max(1, cfg.window.size_s // 60),
                      next_level=next_level if target is not None else None, next_level_posts=target)
    return result.to_dict()


def score_window(stats: WindowStats, state: KeyState, watchlist: Watchlist | None, cfg: RiskConfig,
                 playbooks: dict[str, Playbook], examples: Sequence[dict[str, Any]] = (),
                 computed_at: str | None = None, learn_only: bool = False
                 ) -> tuple[Assessment, AlertEvent | None, KeyState]:
    """Score one closed window of one key and advance the key's state.

    `learn_only` (a warm-up: the first hours of a replay) teaches the key's baseline and
    leaves its alert state alone: no level change, no event."""
    slide_s = cfg.window.slide_s
    scores = assess(stats, state.baseline, category_weight(stats.category, watchlist, cfg.severity), cfg)
    inf, sev, vol, score = scores.influence, scores.severity, scores.volatility, scores.risk_score
    history, history_end = extend_history(state, stats, slide_s * 1000)
    if learn_only:
        alert, change = state.alert, None
    else:
        evidence = has_evidence(stats, cfg.alerts, hour_posts_before(history, history_end, stats.window_end_ms, slide_s))
        alert, change = next_level(state.alert, score, stats.window_end_ms, slide_s * 1000, cfg.score, cfg.alerts,
                                   evidence=evidence)
    baseline = update_baseline(state.baseline, stats, stats.window_end_ms, slide_s, cfg.volatility, cfg.normal,
                               elevated=alert.level != "low", influence_cfg=cfg.influence, warmup=learn_only)
    new_state = KeyState(baseline, alert, history, history_end)
    assessment = Assessment(
        brand=stats.brand, category=stats.category,
        window_start_ms=stats.window_start_ms, window_end_ms=stats.window_end_ms,
        posts=stats.posts, negative_ratio=stats.negative_ratio,
        influence=inf, severity=sev, volatility=vol, risk_score=score,
        level=alert.level, raw_level=level_for(score, cfg.score),
        first_detected_ms=alert.first_detected_ms, computed_at=computed_at,
    )
    event = None
    if change is not None:
        first = alert.first_detected_ms if alert.first_detected_ms is not None else state.alert.first_detected_ms
        event = AlertEvent(
            event=change, brand=stats.brand, category=stats.category, level=alert.level,
            previous_level=state.alert.level, at_ms=stats.window_end_ms, first_detected_ms=first,
            window_start_ms=stats.window_start_ms, window_end_ms=stats.window_end_ms,
            posts=stats.posts, negative_ratio=stats.negative_ratio, influence=inf, severity=sev,
            volatility=vol, risk_score=score, examples=tuple(examples[: cfg.alerts.examples]),
            playbook=playbooks[alert.level],
            forecast=alert_forecast(stats, history, state.baseline, alert.level, watchlist, cfg)
            if change == "raised" else None,
        )
    return assessment, event, new_state


def example_of(post: Post, max_chars: int = 200) -> dict[str, Any]:
    return {"id": post.id, "text": post.text[:max_chars], "platform": post.platform,
            "author": post.author.name or post.author.id, "url": post.url}


class _Pane:
    """One slide's worth of posts of one key: a mergeable aggregate plus best examples."""

    __slots__ = ("acc", "examples")

    def __init__(self) -> None:
        self.acc = Accumulator()
        self.examples: list[tuple[tuple, dict[str, Any]]] = []


@dataclass
class EngineResult:
    assessments: list[Assessment] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)  # per-brand records (scoring/incidents.py)
    posts_in: int = 0
    posts_matched: int = 0
    late_dropped: int = 0


class Engine:
    """Feed posts in any order; collects Assessments and AlertEvents as windows close."""

    def __init__(self, watchlist: Watchlist, sentiment: SentimentFn, config: RiskConfig | None = None,
                 matcher: Matcher | None = None, playbooks: dict[str, Playbook] | None = None,
                 baselines: dict[tuple[str, str], Baseline] | None = None, warmup_until_ms: int | None = None):
        """`baselines` seed keys at first sight (scoring/warmstart.py); windows ending at or
        before `warmup_until_ms` only teach the keys' baselines (no assessment, no alert)."""
        self.seeds = dict(baselines or {})
        self.warmup_until_ms = warmup_until_ms
        self.watchlist = watchlist
        self.cfg = config or RiskConfig()
        self.sentiment = sentiment
        self.matcher = matcher or Matcher(watchlist)
        self.playbooks = playbooks or load_playbooks()
        self.size_ms = self.cfg.window.size_s * 1000
        self.slide_ms = self.cfg.window.slide_s * 1000
        self.delay_ms = self.cfg.window.out_of_orderness_s * 1000
        self.watermark = -(2 ** 62)
        self.max_ts = -(2 ** 62)
        self.states: dict[tuple[str, str], KeyState] = {}
        self._panes: dict[tuple[str, str], dict[int, _Pane]] = {}
        self._fired: dict[tuple[str, str], int] = {}  # key -> last window end fired
        from scoring.incidents import IncidentBook, IncidentConfig

        self.incident_book = IncidentBook(IncidentConfig(quiet_s=self.cfg.alerts.incident_quiet_s))
        self._step_alerts: list[AlertEvent] = []  # this watermark step's key alerts, for the incidents
        self.result = EngineResult()

    # -- input
    def feed(self, posts: Iterable[Post], batch: int = 512) -> EngineResult:
        """Match and score posts in batches (the sentiment model likes batches), in input order."""
        chunk: list[Post] = []
        for post in posts:
            chunk.append(post)
            if len(chunk) >= batch:
                self._feed_chunk(chunk)
                chunk = []
        if chunk:
            self._feed_chunk(chunk)
        return self.result

    def _feed_chunk(self, posts: list[Post]) -> None:
        matches = [self.matcher.match(p.text, p.title) for p in posts]
        hits = [p for p, m in zip(posts, matches) if m]
        scores = iter(self.sentiment(hits) if hits else ())
        for post, match in zip(posts, matches):
            self.add_scored(post, match, next(scores) if match else 0.5)

    def add_scored(self, post: Post, match: MatchResult, sentiment: float) -> None:
        """One post already matched and scored (what `posts.scored` carries)."""
        self.result.posts_in += 1
        ts = post.published_ms
        if match:
            self.result.posts_matched += 1
            pane_start = ts - ts % self.slide_ms
            if pane_start + self.size_ms <= self.watermark:
                self.result.late_dropped += 1
            else:
                negative = sentiment < self.cfg.features.negative_below
                row = post_features(post, negative, sentiment, match, self.cfg.features, ts)
                rank = (row.negative, row.reach + row.engagement, post.id)
                for key in dict.fromkeys(match.pairs):
                    panes = self._panes.setdefault(key, {})
                    pane = panes.get(pane_start)
                    if pane is None:
                        pane = panes[pane_start] = _Pane()
                    pane.acc.add(row)
                    if len(pane.examples) < 3 or rank > pane.examples[0][0]:
                        entry = (rank, example_of(post))
                        if len(pane.examples) < 3:
                            heapq.heappush(pane.examples, entry)
                        else:
                            heapq.heapreplace(pane.examples, entry)
        if ts > self.max_ts:
            self.max_ts = ts
            self._advance(ts - self.delay_ms)

    def flush(self) -> EngineResult:
        """End of input: the watermark goes to +infinity and every window fires."""
        self._advance(2 ** 62)
        return self.result

    def run(self, posts: Iterable[Post]) -> EngineResult:
        self.feed(posts)
        return self.flush()

    def baselines(self) -> dict[tuple[str, str], Baseline]:
        """Every key's baseline as it stands (a warm-up's result, for a baseline file)."""
        out = dict(self.seeds)
        out.update({key: state.baseline for key, state in self.states.items()})
        return out

    # -- windows
    def _advance(self, watermark: int) -> None:
        old = self.watermark
        if watermark <= old:
            return
        self.watermark = watermark
        # Windows end on slide boundaries: nothing can fire unless one was crossed.
        if old > -(2 ** 61) and watermark // self.slide_ms == old // self.slide_ms:
            return
        due: list[tuple[int, tuple[str, str]]] = []
        for key, panes in self._panes.items():
            fired = self._fired.get(key, -(2 ** 62))
            ends: set[int] = set()
            for start in panes:
                end = start + self.slide_ms
                while end <= start + self.size_ms:
                    if fired < end <= watermark:
                        ends.add(end)
                    end += self.slide_ms
            due.extend((end, key) for end in ends)
        due.sort()
        for end, key in due:
            self._fill_silence(key, end)
            self._fire(key, end)
        # a key above low keeps being assessed while it is silent, so that its level can fall
        for key in [k for k, st in self.states.items() if st.alert.level != "low"]:
            self._fill_silence(key, watermark + 1)
        # incidents see the step's key alerts in event-time order (ties by brand, category),
        # as `yuqing replay` gives them the job's: keys fire in their own order within a step
        for event in sorted(self._step_alerts, key=lambda e: (e.at_ms, e.brand, e.category)):
            self.result.incidents.extend(self.incident_book.advance(event.at_ms))
            self.result.incidents.extend(self.incident_book.key_alert(event.to_dict()))
        self._step_alerts.clear()
        self.result.incidents.extend(self.incident_book.advance(watermark))
        for key in {key for _, key in due}:
            panes = self._panes[key]
            fired = self._fired[key]
            for start in [s for s in panes if s + self.size_ms <= fired]:
                del panes[start]
            if not panes:
                del self._panes[key]

    def _fill_silence(self, key: tuple[str, str], before_end: int) -> None:
        """Score the empty windows of an elevated key up to (not including) `before_end`:
        what the Flink job's event-time timer does when no window arrives for a key."""
        last = self._fired.get(key)
        state = self.states.get(key)
        if last is None or state is None:
            return
        end = last + self.slide_ms
        while state.alert.level != "low" and end < before_end:
            self._fire(key, end)
            state = self.states[key]
            end += self.slide_ms

    def _fire(self, key: tuple[str, str], end: int) -> None:
        start = end - self.size_ms
        acc = Accumulator()
        candidates: list[tuple[tuple, dict[str, Any]]] = []
        panes = self._panes.get(key, {})
        for pane_start, pane in panes.items():
            if start <= pane_start < end:
                acc.merge(pane.acc)
                candidates.extend(pane.examples)
        self._fired[key] = end
        state = self.states.get(key) or KeyState(baseline=self.seeds.get(key, Baseline()))
        if not acc.posts and state.alert.level == "low":
            return  # Flink emits no empty window; only an elevated key's timer scores one
        newest = panes.get(end - self.slide_ms)
        stats = acc.stats(key[0], key[1], start, end, last_slide_posts=newest.acc.posts if newest else 0)
        examples = [e for _, e in sorted(candidates, key=lambda c: c[0], reverse=True)]
        learn_only = self.warmup_until_ms is not None and end <= self.warmup_until_ms
        assessment, event, self.states[key] = score_window(
            stats, state, self.watchlist, self.cfg, self.playbooks, examples, learn_only=learn_only)
        if learn_only:
            return
        self.result.assessments.append(assessment)
        if event is not None:
            self.result.alerts.append(event)
            self._step_alerts.append(event)
