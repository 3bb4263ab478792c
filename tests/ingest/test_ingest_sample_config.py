"""data/crawl.sample.yaml stays loadable and shows every source type."""
from pathlib import Path

from ingest.config import load_crawl_config, parse_crawl_config
from ingest.sources import HtmlSource, JsonApiSource, JsonlSource, RssSource
import yaml

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "crawl.sample.yaml"


def test_sample_config_loads_with_every_source_type():
    config = load_crawl_config(SAMPLE)
    kinds = {type(s) for s in config.sources}
    assert kinds == {RssSource, JsonApiSource, HtmlSource}  # the replay entry is disabled
    raw = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    for entry in raw["sources"]:
        entry["enabled"] = True
    everything = parse_crawl_config(raw)
    assert {type(s) for s in everything.sources} == {RssSource, JsonApiSource, HtmlSource, JsonlSource}
    modes = sorted(s.mode for s in everything.sources if isinstance(s, JsonApiSource))
    assert modes == ["cursor", "page"]
    assert config.http.host_intervals == {"api.example.com": 0.2}
