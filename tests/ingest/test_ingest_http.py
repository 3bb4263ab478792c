"""The crawler HTTP client against a local server: robots, retries, backoff, timeouts, pacing."""
import time

import pytest

from ingest.http import FetchError, HttpClient, HttpConfig, RobotsDisallowed, backoff_delay

ROBOTS = "User-agent: *\nDisallow: /private\n"


def fast(**kw):
    base = dict(timeout_s=2.0, retries=2, backoff_base_s=0.01, backoff_max_s=0.05, min_interval_s=0.0,
                allow_private_networks=("127.0.0.0/8",))
    base.update(kw)
    return HttpConfig(**base)


def test_backoff_grows_exponentially_and_is_capped():
    top = [backoff_delay(a, 0.5, 10.0, rng=lambda: 0.999999) for a in range(8)]
    low = [backoff_delay(a, 0.5, 10.0, rng=lambda: 0.0) for a in range(3)]
    assert top[:5] == pytest.approx([0.5, 1.0, 2.0, 4.0, 8.0], rel=1e-5)
    assert top[5:] == pytest.approx([10.0] * 3, rel=1e-5)
    assert low == [0.25, 0.5, 1.0]


def test_robots_txt_forbids_a_path_and_nothing_is_requested(web):
    web.add("/robots.txt", ROBOTS, "text/plain")
    web.add("/private/feed", "secret")
    web.add("/public/feed", "hello")
    seen = []
    client = HttpClient(fast())
    with pytest.raises(RobotsDisallowed):
        client.get(web.url("/private/feed"), observe=seen.append)
    assert client.get(web.url("/public/feed")).body == b"hello"
    assert web.hits("/private/feed") == 0 and web.hits("/robots.txt") == 1  # cached
    assert seen == ["robots"]


def test_missing_robots_txt_allows_everything(web):
    web.add("/x", "ok")
    assert HttpClient(fast()).get(web.url("/x")).status == 200


def test_robots_can_be_switched_off(web):
    web.add("/robots.txt", "User-agent: *\nDisallow: /\n", "text/plain")
    web.add("/x", "ok")
    with pytest.raises(RobotsDisallowed):
        HttpClient(fast()).get(web.url("/x"))
    assert HttpClient(fast(respect_robots=False)).get(web.url("/x")).body == b"ok"


def test_500_then_success_is_retried_with_backoff(web):
    web.sequence("/flaky", [(500, "text/plain", "boom", 0), (503, "text/plain", "busy", 0),
                            (200, "text/plain", "fine", 0)])
    sleeps, seen = [], []
    client = HttpClient(fast(backoff_base_s=0.5, backoff_max_s=30), sleep=sleeps.append, rng=lambda: 0.0)
    assert client.get(web.url("/flaky"), observe=seen.append).body == b"fine"
    assert seen == ["500", "503", "200"]
    assert sleeps == [0.25, 0.5]  # base * 2^attempt * 0.5 (jitter floor)


def test_persistent_5xx_fails_after_the_retries(web):
    web.add("/down", "nope", status=502)
    with pytest.raises(FetchError) as info:
        HttpClient(fast(retries=2)).get(web.url("/down"))
    assert info.value.status == "502" and web.hits("/down") == 3


def test_4xx_is_not_retried(web):
    with pytest.raises(FetchError) as info:
        HttpClient(fast(retries=3)).get(web.url("/missing"))
    assert info.value.status == "404" and web.hits("/missing") == 1


def test_slow_answer_times_out_then_gives_up(web):
    web.add("/slow", "late", delay_s=1.5)
    seen = []
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        HttpClient(fast(timeout_s=0.3, retries=1)).get(web.url("/slow"), observe=seen.append)
    assert info.value.status == "timeout" and seen == ["timeout", "timeout"]
    assert time.monotonic() - started < 1.5


def test_slow_then_fast_succeeds(web):
    web.sequence("/sometimes", [(200, "text/plain", "late", 1.0), (200, "text/plain", "quick", 0)])
    assert HttpClient(fast(timeout_s=0.3, retries=1)).get(web.url("/sometimes")).body == b"quick"


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_requests_to_one_host_are_paced(web):
    web.add("/a", "a")
    clock = FakeClock()
    client = HttpClient(fast(min_interval_s=0.15), clock=clock, sleep=clock.sleep)
    for _ in range(3):
        client.get(web.url("/a"))
    # robots.txt at t=0, then /a at 0.15, 0.30, 0.45: one interval between request starts
    assert clock.sleeps == [0.15, 0.15, 0.15] and web.hits("/a") == 3


def test_robots_crawl_delay_slows_a_host_down(web):
    web.add("/robots.txt", "User-agent: *\nCrawl-delay: 2\n", "text/plain")
    web.add("/a", "a")
    clock = FakeClock()
    client = HttpClient(fast(min_interval_s=0.1), clock=clock, sleep=clock.sleep)
    client.get(web.url("/a"))
    client.get(web.url("/a"))
    assert clock.sleeps == [0.1, 2.0]


def test_per_host_interval_override(web):
    web.add("/a", "a")
    host = web.base.split("//")[1]
    client = HttpClient(fast(min_interval_s=5.0, host_intervals={host: 0.0}))
    started = time.monotonic()
    for _ in range(3):
        client.get(web.url("/a"))
    assert time.monotonic() - started < 1.0


def test_query_params_are_appended(web):
    web.add("/api", "{}", "application/json")
    HttpClient(fast()).get(web.url("/api?x=1"), params={"q": "快送", "page": 2, "skip": None})
    assert web.log[-1][1] == "/api?x=1&q=%E5%BF%AB%E9%80%81&page=2"
