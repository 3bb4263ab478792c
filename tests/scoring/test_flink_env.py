"""The local mini-cluster's JVM gets a temp dir in the state folder and a heap cap."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from scoring.flink_env import local_jvm_args
from core.config import ConfigError, Settings

TMP = Path("/state/tmp/flink/run-1")


def test_defaults_cap_the_heap_and_move_temp_files():
    args = local_jvm_args(Settings(), "", TMP).split()
    assert args == [f"-Djava.io.tmpdir={TMP}", f"-Xmx{Settings().flink.local_heap_mb}m", "-XX:TieredStopAtLevel=1"]


def test_the_users_jvm_args_win():
    assert (local_jvm_args(Settings(), "-Xmx3g -Djava.io.tmpdir=/x -XX:-TieredCompilation", TMP)
            == "-Xmx3g -Djava.io.tmpdir=/x -XX:-TieredCompilation")
    assert local_jvm_args(Settings(), " -XX:+UseG1GC ", TMP).split()[0] == "-XX:+UseG1GC"


def test_configured_heap_is_used_and_checked():
    settings = Settings()
    bigger = replace(settings, flink=replace(settings.flink, local_heap_mb=2048))
    assert "-Xmx2048m" in local_jvm_args(bigger, "", TMP).split()
    tiny = replace(settings, flink=replace(settings.flink, local_heap_mb=64))
    with pytest.raises(ConfigError, match="local_heap_mb"):
        local_jvm_args(tiny, "", TMP)


def test_jit_choice_is_applied_and_checked():
    settings = Settings()
    tiered = replace(settings, flink=replace(settings.flink, local_jit="tiered"))
    assert not any("Tiered" in arg for arg in local_jvm_args(tiered, "", TMP).split())
    wrong = replace(settings, flink=replace(settings.flink, local_jit="c2"))
    with pytest.raises(ConfigError, match="local_jit.*c1, tiered.*'c2'"):
        local_jvm_args(wrong, "", TMP)
