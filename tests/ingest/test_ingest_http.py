"""The crawler HTTP client against local servers: robots (protego), retries, backoff, timeouts, pacing,
and safety: decompressed-size cap, address guard on every hop, credentials across origins, link scope."""
import time
from datetime import datetime, timezone

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


# ---------------------------------------------------------------- safety and manners (issue 17 item 7)
import gzip  # noqa: E402
import ipaddress  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import tracemalloc  # noqa: E402
import zlib  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

from ingest.config import CrawlConfigError, parse_crawl_config  # noqa: E402
from ingest.http import AddressBlocked, Inflater  # noqa: E402
from ingest.netguard import (address_allowed, expand_headers, parse_networks, redact_url,  # noqa: E402
                             refusal, same_site)

BOARD_GB = "<p>快送外卖数据泄露，用户投诉镕基金被盗刷</p>".encode("gb18030")


class Site:
    """A loopback web server on a chosen address that records each request's headers.

    A route answers (status, headers, body); `slow` bodies are sent a few bytes at a time."""

    def __init__(self, host: str):
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.trickle: dict[str, float] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_GET(self):  # noqa: N802
                site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, headers, body = site.routes.get(self.path, (404, {}, b"not found"))
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    pause = site.trickle.get(self.path)
                    for start in range(0, len(body), 4 if pause else len(body) or 1):
                        self.wfile.write(body[start:start + (4 if pause else len(body))])
                        self.wfile.flush()
                        if pause:
                            time.sleep(pause)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def add(self, path, body=b"", status=200, **headers):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = (status, {k.replace("_", "-"): v for k, v in headers.items()}, data)

    def redirect(self, path, to, status=302):
        self.add(path, b"", status=status, Location=to)

    def url(self, path):
        return self.base + path

    def hits(self, path):
        return sum(1 for p, _h in self.requests if p == path)

    def headers_of(self, path):
        return [h for p, h in self.requests if p == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site_a():
    site = Site("127.0.0.1")
    yield site
    site.close()


@pytest.fixture
def site_b():
    site = Site("127.0.0.2")
    yield site
    site.close()


def gzip_bomb(expanded_mb: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    return b"".join(packer.compress(zeros) for _ in range(expanded_mb)) + packer.flush()


def test_gzip_bomb_stops_at_the_decompressed_cap(site_a):
    bomb = gzip_bomb(50)                       # 50 MB of zeros in ~50 KB
    assert len(bomb) < 60 * 1024
    one_mb = gzip.compress(bytes(1024 * 1024), 9)
    site_a.add("/bomb", bomb, Content_Type="text/html", Content_Encoding="gzip")
    site_a.add("/members", one_mb * 1024, Content_Encoding="gzip")   # 1 GiB in 1024 gzip members
    client = HttpClient(fast(max_body_bytes=1024 * 1024, timeout_s=10))
    tracemalloc.start()
    try:
        for path in ("/bomb", "/members"):
            with pytest.raises(FetchError) as info:
                client.get(site_a.url(path))
            assert info.value.status == "too_large" and "1048576" in str(info.value), path
            assert site_a.hits(path) == 1, "too large is not retried"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024              # never held more than the cap and a few chunks


def test_small_compressed_bodies_decode_in_every_supported_form(site_a):
    multi = gzip.compress("第一段，".encode("gb18030")) + gzip.compress("第二段".encode("gb18030"))
    site_a.add("/gz", gzip.compress(BOARD_GB), Content_Type="text/html; charset=gb2312", Content_Encoding="gzip")
    site_a.add("/zlib", zlib.compress(BOARD_GB), Content_Encoding="deflate")
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    site_a.add("/raw", raw.compress(BOARD_GB) + raw.flush(), Content_Encoding="deflate")
    site_a.add("/multi", multi, Content_Encoding="x-gzip")
    site_a.add("/plain", BOARD_GB, Content_Encoding="identity")
    client = HttpClient(fast())
    for path in ("/gz", "/zlib", "/raw", "/plain"):
        assert client.get(site_a.url(path)).body == BOARD_GB, path
    assert client.get(site_a.url("/multi")).body.decode("gb18030") == "第一段，第二段"
    sent = site_a.headers_of("/gz")[0]
    assert sent["accept-encoding"] == "gzip, deflate"


def test_unsupported_or_corrupt_encodings_fail_with_a_reason(site_a):
    site_a.add("/br", b"\x1b\x00\x00", Content_Encoding="br")
    site_a.add("/bad", b"\x1f\x8b\x08\x00garbage-garbage", Content_Encoding="gzip")
    site_a.add("/cut", gzip.compress(BOARD_GB * 50)[:60], Content_Encoding="gzip")
    client = HttpClient(fast())
    for path, words in (("/br", "unsupported Content-Encoding 'br'"), ("/bad", "corrupt gzip"),
                        ("/cut", "ended early")):
        with pytest.raises(FetchError) as info:
            client.get(site_a.url(path))
        assert info.value.status == "encoding" and words in str(info.value), path
        assert site_a.hits(path) == 1, "an encoding error is not retried"


def test_inflater_never_asks_zlib_for_more_than_the_room_left():
    inflater = Inflater("gzip", limit=1000)
    bomb = gzip_bomb(8)
    with pytest.raises(OverflowError):
        for start in range(0, len(bomb), 100):
            inflater.feed(bomb[start:start + 100])
    assert inflater.size <= 1001


def test_a_trickling_body_hits_the_total_deadline(site_a):
    site_a.add("/drip", b"x" * 400)
    site_a.trickle["/drip"] = 0.05           # 4 bytes every 50 ms: 5 s for the whole body
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        HttpClient(fast(timeout_s=0.5, retries=0)).get(site_a.url("/drip"))
    assert info.value.status == "timeout" and time.monotonic() - started < 3.5   # the body takes 5 s


def test_loopback_is_refused_unless_allowed_and_nothing_is_sent(site_a):
    site_a.add("/feed", "ok")
    seen = []
    with pytest.raises(AddressBlocked) as info:
        HttpClient(HttpConfig(min_interval_s=0, retries=2)).get(site_a.url("/feed"), observe=seen.append)
    assert info.value.status == "blocked" and "127.0.0.1 is loopback" in str(info.value)
    assert "allow_private_networks" in str(info.value)
    assert site_a.requests == [] and seen == ["blocked"]       # not even robots.txt, not retried
    assert HttpClient(fast()).get(site_a.url("/feed")).body == b"ok"


def test_redirect_to_loopback_is_refused_when_only_the_first_host_is_allowed(site_a, site_b):
    site_b.redirect("/go", site_a.url("/admin"))
    site_a.add("/admin", "internal")
    client = HttpClient(fast(allow_private_networks=("127.0.0.2/32",)))
    with pytest.raises(AddressBlocked) as info:
        client.get(site_b.url("/go"))
    assert "127.0.0.1 is loopback" in str(info.value) and site_a.requests == []


@pytest.mark.parametrize("target", ["http://10.1.2.3/x", "http://169.254.169.254/latest/meta-data/",
                                    "http://[::ffff:192.168.1.1]/x", "http://[fe80::1]/x",
                                    "http://0.0.0.0:9000/", "http://224.0.0.1/"])
def test_redirect_to_a_private_address_is_refused_before_connecting(site_a, target):
    site_a.redirect("/go", target)
    with pytest.raises(AddressBlocked) as info:
        HttpClient(fast()).get(site_a.url("/go"))
    assert info.value.status == "blocked" and "allow_private_networks" in str(info.value)


def test_redirect_to_another_scheme_is_refused(site_a):
    site_a.redirect("/go", "file:///etc/passwd")
    site_a.redirect("/ftp", "ftp://127.0.0.1/x")
    for path in ("/go", "/ftp"):
        with pytest.raises(AddressBlocked) as info:
            HttpClient(fast()).get(site_a.url(path))
        assert "is not http(s)" in str(info.value)


def test_redirects_are_followed_and_bounded(site_a):
    site_a.redirect("/old", "/new", status=301)
    site_a.add("/new", "moved here")
    for n in range(10):
        site_a.redirect(f"/loop{n}", f"/loop{n + 1}")
    client = HttpClient(fast(max_redirects=3))
    answer = client.get(site_a.url("/old"))
    assert answer.body == b"moved here" and answer.url == site_a.url("/new")
    with pytest.raises(FetchError) as info:
        client.get(site_a.url("/loop0"))
    assert info.value.status == "redirects" and site_a.hits("/loop3") == 1 and site_a.hits("/loop4") == 0


def test_cross_host_redirect_drops_credentials_same_host_keeps_them(site_a, site_b):
    site_a.redirect("/here", "/there")
    site_a.add("/there", "same host")
    site_a.redirect("/away", site_b.url("/landing"))
    site_b.add("/landing", "other host")
    secrets = {"Authorization": "Bearer s3cr3t-微博", "Cookie": "SUB=abc", "Proxy-Authorization": "Basic eA==",
               "X-Trace": "keep-me"}
    secrets["Authorization"] = "Bearer s3cr3t-token"
    client = HttpClient(fast())
    client.get(site_a.url("/here"), headers=secrets)
    kept = site_a.headers_of("/there")[0]
    assert kept["authorization"] == "Bearer s3cr3t-token" and kept["cookie"] == "SUB=abc"
    client.get(site_a.url("/away"), headers=secrets)
    landed = site_b.headers_of("/landing")[0]
    assert "authorization" not in landed and "cookie" not in landed and "proxy-authorization" not in landed
    assert landed["x-trace"] == "keep-me"
    assert site_a.headers_of("/away")[0]["authorization"] == "Bearer s3cr3t-token"


def test_a_port_change_is_another_origin_too(site_a):
    other = Site("127.0.0.1")
    try:
        site_a.redirect("/hop", other.url("/x"))
        other.add("/x", "ok")
        HttpClient(fast()).get(site_a.url("/hop"), headers={"Cookie": "a=b"})
        assert "cookie" not in other.headers_of("/x")[0]
    finally:
        other.close()


WILDCARD_ROBOTS = """User-agent: *
Disallow: /*.php$
Disallow: /private
Allow: /private/notice
Disallow: /search?*q=
Crawl-delay: 0
"""


def test_wildcard_and_longest_match_robots_rules(site_a):
    site_a.add("/robots.txt", WILDCARD_ROBOTS, Content_Type="text/plain")
    for path in ("/index.php?page=2", "/index.phpx", "/private/notice/1", "/board", "/search?lang=zh"):
        site_a.add(path, "ok")
    client = HttpClient(fast())
    for path in ("/index.php", "/forum/thread.php", "/private/post/9", "/search?lang=zh&q=%E5%BF%AB"):
        with pytest.raises(RobotsDisallowed):
            client.get(site_a.url(path))
    for path in ("/index.php?page=2", "/index.phpx", "/private/notice/1", "/board", "/search?lang=zh"):
        assert client.get(site_a.url(path)).body == b"ok", path
    assert [p for p, _ in site_a.requests if p.endswith(".php") or p.startswith("/private/post")] == []


def test_robots_groups_match_our_product_token(site_a):
    site_a.add("/robots.txt", "User-agent: YuqingBot\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
               Content_Type="text/plain")
    site_a.add("/x", "ok")
    with pytest.raises(RobotsDisallowed):
        HttpClient(fast()).get(site_a.url("/x"))
    assert HttpClient(fast(user_agent="OtherBot/2.0")).get(site_a.url("/x")).body == b"ok"


def test_robots_txt_of_the_redirect_target_is_checked(site_a, site_b):
    site_a.redirect("/story/1", site_b.url("/members/1"))
    site_b.add("/robots.txt", "User-agent: *\nDisallow: /members\n", Content_Type="text/plain")
    site_b.add("/members/1", "member only")
    with pytest.raises(RobotsDisallowed) as info:
        HttpClient(fast()).get(site_a.url("/story/1"))
    assert "/members/1" in str(info.value)
    assert site_b.hits("/robots.txt") == 1 and site_b.hits("/members/1") == 0


def test_robots_txt_that_redirects_is_followed(site_a):
    site_a.redirect("/robots.txt", "/real-robots.txt", status=301)
    site_a.add("/real-robots.txt", "User-agent: *\nDisallow: /no\n", Content_Type="text/plain")
    site_a.add("/yes", "ok")
    client = HttpClient(fast())
    with pytest.raises(RobotsDisallowed):
        client.get(site_a.url("/no"))
    assert client.get(site_a.url("/yes")).body == b"ok"


def test_dns_answer_that_changes_after_the_check_is_not_used(site_a, monkeypatch):
    """The connection goes to the address that was checked, not to a second DNS answer."""
    real = socket.getaddrinfo
    answers = []

    def rebinding(host, port, *args, **kw):
        if host == "news.rebind.test":
            answers.append(host)
            target = "127.0.0.1" if len(answers) == 1 else "10.9.9.9"
            return real(target, port, *args, **kw)
        return real(host, port, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    site_a.add("/feed", "pinned")
    port = site_a.server.server_address[1]
    client = HttpClient(fast(respect_robots=False, retries=0))
    assert client.get(f"http://news.rebind.test:{port}/feed").body == b"pinned"
    assert answers == ["news.rebind.test"]
    assert site_a.headers_of("/feed")[0]["host"] == f"news.rebind.test:{port}"


def test_non_ascii_urls_are_percent_encoded_on_the_wire(site_a):
    site_a.add("/board?kw=%E5%BF%AB%E9%80%81", "ok")
    assert HttpClient(fast()).get(site_a.url("/board?kw=快送")).body == b"ok"


def test_errors_never_show_tokens_or_passwords(site_a):
    client = HttpClient(fast())
    url = site_a.url("/api?q=快送&access_token=T0KEN123&appsecret=S3CRET&sign=ok")
    with pytest.raises(FetchError) as info:
        client.get(url)
    text = str(info.value)
    assert "T0KEN123" not in text and "S3CRET" not in text and "access_token=REDACTED" in text
    assert "q=%E5%BF%AB%E9%80%81" in text and info.value.url.count("REDACTED") == 3   # token, secret, sign
    assert redact_url("https://bot:hunter2@api.example.com/x?key=k1&page=2") == \
        "https://bot:REDACTED@api.example.com/x?key=REDACTED&page=2"
    assert redact_url("https://api.example.com/x?keyword=快送") == "https://api.example.com/x?keyword=快送"


# ---------------------------------------------------------------- pure guards
@pytest.mark.parametrize("text,why", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.0.0.8", "private"), ("192.168.1.1", "private"),
    ("172.16.5.4", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.251", "multicast"), ("ff02::1", "multicast"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("100.64.0.1", "not globally routable"), ("240.0.0.1", "reserved"), ("fc00::5", "private"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"), ("64:ff9b::a9fe:a9fe", "link-local"),
    ("2002:7f00:1::", "loopback"), ("::127.0.0.1", "reserved"),
])
def test_refused_address_kinds(text, why):
    assert refusal(ipaddress.ip_address(text)).startswith(why)


@pytest.mark.parametrize("text", ["8.8.8.8", "114.114.114.114", "2606:4700::1111", "::ffff:223.5.5.5"])
def test_public_addresses_pass(text):
    assert refusal(ipaddress.ip_address(text)) is None


def test_allow_list_covers_plain_and_mapped_forms():
    allowed = parse_networks(["127.0.0.0/8", "fd00::/8", "10.20.0.0/16"], "http.allow_private_networks")
    assert address_allowed(ipaddress.ip_address("127.0.0.5"), allowed) is None
    assert address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"), allowed) is None
    assert address_allowed(ipaddress.ip_address("fd00::9"), allowed) is None
    assert address_allowed(ipaddress.ip_address("10.21.0.1"), allowed) == "private"
    assert address_allowed(ipaddress.ip_address("::1"), allowed) == "loopback"


def test_same_site_follows_only_the_source_host_or_listed_hosts():
    base = "https://bbs.example.com/board?kw=快送"
    assert same_site("https://bbs.example.com/p/1", base)
    assert same_site("http://BBS.example.com./p/1", base)
    assert not same_site("https://evil.example.net/p/1", base)
    assert not same_site("http://127.0.0.1/admin", base)
    assert not same_site("javascript:alert(1)", base)
    assert same_site("https://img.example.com/a", base, ["img.example.com"])
    assert same_site("https://m.news.example.com/a", base, ["*.example.com"])
    assert not same_site("https://example.com.evil.net/a", base, ["*.example.com"])
    assert same_site("https://例子.中国/a", "https://xn--fsqu00a.xn--fiqs8s/")


# ---------------------------------------------------------------- config
def crawl(http=None, headers=None):
    source = {"name": "weibo", "type": "json_api", "url": "https://api.example.com/x", "fields": {"id": "id"}}
    if headers is not None:
        source["headers"] = headers
    return parse_crawl_config({"http": http or {}, "sources": [source]})


def test_http_config_keys_are_validated():
    config = crawl({"allow_private_networks": ["127.0.0.0/8", "::1", "10.0.0.0/8"], "max_redirects": 2})
    assert config.http.max_redirects == 2
    assert [str(n) for n in config.http.allow_private_networks] == ["127.0.0.0/8", "::1/128", "10.0.0.0/8"]
    assert crawl().http.allow_private_networks == ()
    for http, words in (({"allow_private_networks": ["127.0.0.0/33"]}, "allow_private_networks[0]"),
                        ({"allow_private_networks": "127.0.0.0/8"}, "allow_private_networks must be list"),
                        ({"allow_private_networks": [8]}, "must be a CIDR string"),
                        ({"max_redirects": 50}, "max_redirects must be at most 20")):
        with pytest.raises(CrawlConfigError) as info:
            crawl(http)
        assert words in str(info.value) and "\n" not in str(info.value)


def test_header_values_expand_env_vars_and_missing_ones_name_source_and_header(monkeypatch):
    monkeypatch.setenv("YQ_TEST_WEIBO_TOKEN", "tok-2026")
    source = crawl(headers={"Authorization": "Bearer ${YQ_TEST_WEIBO_TOKEN}", "X-Lang": "zh"}).sources[0]
    assert source.headers == {"Authorization": "Bearer tok-2026", "X-Lang": "zh"}
    monkeypatch.delenv("YQ_TEST_WEIBO_TOKEN")
    with pytest.raises(CrawlConfigError) as info:
        crawl(headers={"Authorization": "Bearer ${YQ_TEST_WEIBO_TOKEN}"})
    message = str(info.value)
    assert "weibo" in message and "headers.Authorization" in message and "YQ_TEST_WEIBO_TOKEN" in message
    assert "\n" not in message


def test_expanded_headers_may_not_smuggle_line_breaks():
    with pytest.raises(ValueError) as info:
        expand_headers({"X-A": "${EVIL}"}, "sources[0] (a)", {"EVIL": "x\r\nX-Injected: 1"})
    assert "line breaks" in str(info.value) and "Injected" not in str(info.value)
    with pytest.raises(ValueError) as info:
        expand_headers({"X-Keyword": "快送"}, "sources[0] (a)")
    assert "headers.X-Keyword" in str(info.value) and "Latin-1" in str(info.value)


# ---------------------------------------------------------------- links found on crawled pages
def board(detail_base: str, next_url: str) -> str:
    return f"""<html><head><meta charset="utf-8"></head><body><ul>
    <li class="t"><a href="/p/1">快送外卖又崩了</a><time datetime="2026-12-06T10:00:00+08:00"></time></li>
    <li class="t"><a href="{detail_base}/p/2">飛鳥出行數據洩露</a><time datetime="2026-12-06T10:05:00+08:00"></time></li>
    </ul><a class="next" href="{next_url}">下一页</a></body></html>"""


def html_board(site, **extra):
    from ingest.sources import build_source
    raw = {"name": "bbs", "type": "html", "url": site.url("/board"), "platform": "forum",
           "list": {"item": "li.t", "next": "a.next", "max_pages": 3,
                    "fields": {"url": {"selector": "a", "attr": "href"}, "title": "a",
                               "published_at": {"selector": "time", "attr": "datetime"}}},
           "detail": {"fields": {"text": "div.body"}}, **extra}
    return build_source(raw, "sources[0]")


def crawl_pages(src):
    from ingest.sources.base import FetchContext
    notes = []
    ctx = FetchContext(http=HttpClient(fast()), progress=notes.append,
                       clock=lambda: datetime(2026, 12, 6, 3, 0, tzinfo=timezone.utc))
    posts = [item.post for page in src.fetch({}, ctx) for item in page.items]
    return posts, notes


def test_detail_and_next_links_stay_on_the_source_host(site_a, site_b):
    site_a.add("/board", board(site_b.base, site_b.url("/board?page=2")), Content_Type="text/html; charset=utf-8")
    site_a.add("/p/1", '<div class="body">正文一</div>', Content_Type="text/html; charset=utf-8")
    site_b.add("/p/2", '<div class="body">正文二</div>', Content_Type="text/html; charset=utf-8")
    site_b.add("/board?page=2", board(site_b.base, ""), Content_Type="text/html; charset=utf-8")
    posts, notes = crawl_pages(html_board(site_a))
    assert [p["title"] for p in posts] == ["快送外卖又崩了", "飛鳥出行數據洩露"]
    assert posts[0]["text"] == "正文一" and posts[1]["text"] != "正文二"   # list values only
    assert site_b.requests == []
    assert len(notes) == 1 and "not followed" in notes[0] and "127.0.0.2" in notes[0]


def test_follow_hosts_lets_listed_hosts_through(site_a, site_b):
    site_a.add("/board", board(site_b.base, site_b.url("/board?page=2")), Content_Type="text/html; charset=utf-8")
    site_a.add("/p/1", '<div class="body">正文一</div>', Content_Type="text/html; charset=utf-8")
    site_b.add("/p/2", '<div class="body">正文二</div>', Content_Type="text/html; charset=utf-8")
    site_b.add("/board?page=2", "<html><body></body></html>", Content_Type="text/html; charset=utf-8")
    posts, _notes = crawl_pages(html_board(site_a, follow_hosts=["127.0.0.2"]))
    assert [p["text"] for p in posts] == ["正文一", "正文二"]
    assert site_b.hits("/p/2") == 1 and site_b.hits("/board?page=2") == 1


# ---------------------------------------------------------------- https with the pinned connection
@pytest.fixture
def tls_site(tmp_path):
    """An https server on 127.0.0.1 with a certificate for `localhost` made here, and a client
    context that trusts it (certificates are still verified, hostname included)."""
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    site = Site("127.0.0.1")
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    site.server.socket = server_side.wrap_socket(site.server.socket, server_side=True)
    site.base = site.base.replace("http://127.0.0.1", "https://localhost")
    yield site, ssl.create_default_context(cafile=str(cert))
    site.close()


def test_https_goes_to_the_checked_address_with_the_name_verified(tls_site, site_b):
    site, trust = tls_site
    site.add("/feed", "加密的")
    site.redirect("/down", site_b.url("/plain"))
    site_b.add("/plain", "ok")
    client = HttpClient(fast(), tls_context=trust)
    assert client.get(site.url("/feed")).body == "加密的".encode()
    client.get(site.url("/down"), headers={"Authorization": "Bearer t"})
    assert site.headers_of("/down")[0]["authorization"] == "Bearer t"
    assert "authorization" not in site_b.headers_of("/plain")[0]
    with pytest.raises(FetchError) as info:          # the certificate names localhost, not 127.0.0.1
        HttpClient(fast(retries=0), tls_context=trust).get(site.url("/feed").replace("localhost", "127.0.0.1"))
    assert info.value.status == "robots" and "robots.txt unreachable" in str(info.value)
    assert "certificate" in str(info.value).lower()      # the real cause is in the message
    with pytest.raises(FetchError) as info:
        HttpClient(fast(retries=0, respect_robots=False), tls_context=trust).get(
            site.url("/feed").replace("localhost", "127.0.0.1"))
    assert info.value.status == "connection" and "certificate" in str(info.value).lower()


# ---------------------------------------------------------------- servers that misbehave on the wire
@pytest.fixture
def raw_server():
    """A TCP server on 127.0.0.1 that answers every connection with `script(conn)`."""
    listener = socket.create_server(("127.0.0.1", 0))
    state = {"script": None, "connections": 0}

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            state["connections"] += 1

            def answer(conn=conn):
                try:
                    conn.recv(65536)
                    state["script"](conn)
                except OSError:
                    pass
                finally:
                    conn.close()
            threading.Thread(target=answer, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield state, f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_a_head_sent_a_byte_at_a_time_is_cut_off_at_the_deadline(raw_server):
    state, base = raw_server

    def slowloris(conn):
        for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 200:
            conn.sendall(bytes([byte]))
            time.sleep(0.02)           # every read succeeds within the socket timeout

    state["script"] = slowloris
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        HttpClient(fast(timeout_s=0.4, retries=0, respect_robots=False)).get(base + "/feed")
    assert info.value.status == "timeout" and "answer head" in str(info.value)
    assert time.monotonic() - started < 3.0    # the head alone would take > 4 s


def test_a_body_shorter_than_its_content_length_is_a_failed_attempt(raw_server):
    state, base = raw_server
    state["script"] = lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + "半截".encode())
    with pytest.raises(FetchError) as info:
        HttpClient(fast(retries=1, respect_robots=False)).get(base + "/feed")
    assert info.value.status == "connection" and state["connections"] == 2   # retried, then given up


def test_a_host_with_public_and_private_answers_is_reached_only_on_the_public_ones(monkeypatch):
    from ingest.netguard import AddressRefused, resolve_allowed

    def fake(host, port, *args, **kw):
        answers = {"mixed.test": ["10.0.0.7", "93.184.216.34", "::1"], "inside.test": ["192.168.0.2", "fd00::2"]}
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert [str(a) for a in resolve_allowed("mixed.test", 80, ())] == ["93.184.216.34"]
    with pytest.raises(AddressRefused) as info:
        resolve_allowed("inside.test", 80, ())
    assert "192.168.0.2 is private" in str(info.value) and "fd00::2 is private" in str(info.value)
    allowed = parse_networks(["192.168.0.0/16"], "x")
    assert [str(a) for a in resolve_allowed("inside.test", 80, allowed)] == ["192.168.0.2"]


def test_a_redirect_to_a_chinese_path_is_encoded(site_a):
    site_a.redirect("/go", "/话题/快送".encode("utf-8").decode("latin-1"))   # raw UTF-8 bytes on the wire
    site_a.redirect("/go2", "/%E8%AF%9D%E9%A2%98/%E5%BF%AB%E9%80%81")
    site_a.add("/%E8%AF%9D%E9%A2%98/%E5%BF%AB%E9%80%81", "话题页")
    client = HttpClient(fast())
    assert client.get(site_a.url("/go")).body.decode() == "话题页"
    assert client.get(site_a.url("/go2")).body.decode() == "话题页"
