"""The weekly report with hostile post fields: links, HTML and Markdown from outside stay inert.

Pure rendering (no services): the page is parsed with an HTML parser and the Markdown with a
CommonMark renderer, so the checks are about what a browser or a Markdown viewer would do.
"""
from __future__ import annotations

import base64
import hashlib
from datetime import date, datetime, timezone

import pytest
from bs4 import BeautifulSoup
from markdown_it import MarkdownIt

from sinks.report.data import Period, ReportData, Spreader, TopPost
from sinks.report.render import md_cell, render_html, render_markdown, safe_url

WHEN = datetime(2026, 11, 18, 4, 0, tzinfo=timezone.utc)
# short enough not to be clipped (70 characters)
HOSTILE_TEXT = "[退](http://e.cn)<img src=x onerror=f><script>f()</script>**急**www.e.cn"


def post(url: str, text: str = "快送泄露用户信息[怒]", author: str = "某网友") -> TopPost:
    return TopPost("快送", "weibo", "weibo:1", author, "user", 10, text, url, 99, True, WHEN)


def report(*posts: TopPost, spreader: str = "某网友") -> ReportData:
    data = ReportData(Period.from_dates(date(2026, 11, 16), date(2026, 11, 22)), None, WHEN, brands=["快送"])
    data.top_posts = list(posts)
    data.spreaders = [Spreader("快送", "weibo", "u1", spreader, "user", 10, 1, 1, 99)]
    return data


@pytest.mark.parametrize("url", [
    "javascript:alert(document.cookie)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "vbscript:msgbox(1)", "file:///etc/passwd",
    "//evil.example/x", "http:///no-host", "weibo.com/1", "https://a.example/" + "x" * 3000,
])
def test_only_http_links_are_rendered(url):
    soup = BeautifulSoup(render_html(report(post(url))), "html.parser")
    assert soup.find_all("a") == [], url
    assert safe_url(url) is None
    assert "快送泄露用户信息" in soup.get_text()  # the post is still shown, only not linked


@pytest.mark.parametrize("url", ["https://weibo.com/1234/Abc?x=1&y='2'", "http://www.xiaohongshu.com/explore/1"])
def test_http_links_keep_their_address(url):
    soup = BeautifulSoup(render_html(report(post(url))), "html.parser")
    (link,) = soup.find_all("a")
    assert link["href"] == url and "noopener" in link["rel"] and "noreferrer" in link["rel"]


def test_html_has_a_csp_that_allows_no_script_and_only_its_own_style():
    soup = BeautifulSoup(render_html(report(post("https://weibo.com/1", HOSTILE_TEXT))), "html.parser")
    meta = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})
    assert meta is not None and meta.parent.name == "head"
    policy = dict((d.strip().split(" ", 1) + [""])[:2] for d in meta["content"].split(";"))
    assert policy["default-src"] == "'none'" and "script-src" not in policy  # default-src 'none' covers scripts
    assert policy["base-uri"] == "'none'" and policy["form-action"] == "'none'"
    (style,) = soup.find_all("style")
    digest = base64.b64encode(hashlib.sha256(style.string.encode("utf-8")).digest()).decode()
    assert policy["style-src"] == f"'sha256-{digest}'"
    # nothing the policy would block silently: no inline style attribute, no handler, no script
    assert soup.find_all(style=True) == [] and soup.find_all("script") == []
    assert not [t for t in soup.find_all(True) if any(a.lower().startswith("on") for a in t.attrs)]
    assert HOSTILE_TEXT in soup.get_text()  # shown as text


def _md_html(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


def test_markdown_cells_render_as_plain_text():
    md = render_markdown(report(post("https://weibo.com/1", HOSTILE_TEXT), spreader="<b>大V</b>|[x](http://e.example)"))
    html = _md_html(md)
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find_all(["a", "img", "script", "strong", "b", "em"]) == [], html
    text = soup.get_text()
    assert HOSTILE_TEXT in text and "<b>大V</b>|[x](http://e.example)" in text
    assert "://" not in md and "www." not in md  # nothing a linkifying renderer (GFM) turns into a link
    # the table keeps its shape: the `|` inside a cell did not open a column
    tables = soup.find_all("table")
    assert tables
    for table in tables:
        widths = {len(r.find_all(["td", "th"])) for r in table.find_all("tr")}
        assert len(widths) == 1, table


@pytest.mark.parametrize("text", ["a\\", "\\[x](y)", "&lt;b&gt;", "`code`", "~~s~~", "![i](http://x.example/i.png)",
                                  "<https://x.example>", "http://x.example", "繁體［中文］（全角）"])
def test_md_cell_round_trips_through_commonmark(text):
    rendered = BeautifulSoup(MarkdownIt("commonmark").render(md_cell(text)), "html.parser")
    assert rendered.find_all(["a", "img", "code", "s", "del"]) == []
    assert rendered.get_text().strip() == text


def _chromium_csp_messages(page) -> list[str]:
    """What headless Chromium logs about the page's Content-Security-Policy."""
    from tests.fixtures.browser import console_lines

    return [line for line in console_lines(page) if "Content Security Policy" in line]


def test_a_real_browser_applies_the_stylesheet_under_the_policy(tmp_path):
    html = render_html(report(post("https://weibo.com/1", HOSTILE_TEXT)))
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    assert _chromium_csp_messages(page) == []  # the hash admits the report's own stylesheet
    tampered = tmp_path / "tampered.html"
    tampered.write_text(html.replace("<style>", "<style>body{color:red}"), encoding="utf-8")
    assert any("style-src" in m for m in _chromium_csp_messages(tampered))  # anything else is blocked
