"""Shared fixtures: a small model trained on synthetic sentences written for these tests."""
from __future__ import annotations

import random

import pytest

SUBJECTS = ["这家店", "今天的外卖", "这个快递", "客服小哥", "新买的耳机", "这次的订单"]
POSITIVE = ["味道很好", "送得很快", "服务热情", "非常满意", "包装精美", "真好吃", "下次还来",
            "物超所值", "效果很棒", "特别贴心"]
NEGATIVE = ["太难吃了", "送餐太慢", "态度恶劣", "非常失望", "包装破损", "饭都凉了", "再也不点了",
            "质量很差", "完全是骗人的", "要求退款"]


def synthetic_rows(n: int = 240, seed: int = 7) -> list[tuple[int, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = POSITIVE if label else NEGATIVE
        text = rng.choice(SUBJECTS) + "，" + "，".join(rng.sample(words, 2)) + rng.choice(["", "！", "。"])
        rows.append((label, text))
    return rows


@pytest.fixture(scope="session")
def labeled_tsv(tmp_path_factory):
    path = tmp_path_factory.mktemp("sentiment") / "labeled.tsv"
    path.write_text("".join(f"{label}\t{text}\n" for label, text in synthetic_rows()),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def small_model(labeled_tsv):
    from scoring.sentiment.model import read_labeled_tsv, train_model

    texts, labels = read_labeled_tsv(labeled_tsv)
    return train_model(texts, labels, C=4.0, source="synthetic").model


@pytest.fixture(scope="session")
def small_model_path(small_model, tmp_path_factory):
    return small_model.save(tmp_path_factory.mktemp("model") / "small.npz")
