"""Set-up failures name their cause; version pins agree across Python and the JVM."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from yuqing import setup as setup_mod
from yuqing.config import load_settings

REPO = Path(__file__).resolve().parents[2]


def test_flink_pins_agree_between_pyproject_and_pom():
    pom = setup_mod.pinned_versions()
    pyproject = (REPO / "pyproject.toml").read_text()
    flink = re.search(r'"apache-flink==([\d.]+)"', pyproject).group(1)
    assert pom["flink.version"] == flink
    # the connector is built for the same Flink minor line, e.g. 5.0.0-2.2 for 2.2.x
    assert pom["flink.kafka.connector.version"].endswith("-" + ".".join(flink.split(".")[:2]))
    assert pom["kafka.version"].startswith("4.")


def test_failed_mvn_step_is_one_clear_line(tmp_path, monkeypatch):
    bad_pom = tmp_path / "pom.xml"
    text = setup_mod.POM.read_text().replace("<kafka.version>", "<kafka.version>0.0.0-no-such-")
    bad_pom.write_text(text)
    monkeypatch.setattr(setup_mod, "POM", bad_pom)
    settings = load_settings(env={"YUQING_LIB_DIR": str(tmp_path / "lib")})
    with pytest.raises(setup_mod.SetupError, match=r"^mvn failed: .*kafka"):
        setup_mod.fetch_jars(settings)


def test_missing_debian_packages_when_not_root_print_the_command(monkeypatch):
    monkeypatch.setattr(setup_mod.shutil, "which", lambda name: None)
    monkeypatch.setattr(setup_mod.os, "geteuid", lambda: 1000)
    with pytest.raises(setup_mod.SetupError, match=r"run as root: sudo apt-get update && sudo apt-get install .*clickhouse-server"):
        setup_mod.install_debian_packages()


def test_go_tools_are_pinned_and_a_missing_go_fails_setup(tmp_path, monkeypatch):
    for name, module in setup_mod.GO_TOOLS.items():
        assert re.fullmatch(r"[\w./-]+@v\d+\.\d+\.\d+", module), name  # one release, never @latest
    for name, (package, module) in setup_mod.GO_BUILDS.items():
        assert package.startswith(module.split("@")[0]) and re.search(r"@v\d+\.\d+\.\d+$", module), name
    settings = load_settings(env={"YUQING_LIB_DIR": str(tmp_path / "lib")})
    monkeypatch.setattr(setup_mod.shutil, "which", lambda name: None)
    # the deploy tests fail without these tools, so setup must not skip them quietly
    with pytest.raises(setup_mod.SetupError, match=r"^`go` not found \(needed to build kubeconform, kustomize, docker-compose\)"):
        setup_mod.install_go_tools(settings)


def test_a_failing_go_build_is_one_clear_line(tmp_path, monkeypatch):
    settings = load_settings(env={"YUQING_LIB_DIR": str(tmp_path / "lib")})
    monkeypatch.setattr(setup_mod, "GO_BUILDS", {})
    monkeypatch.setattr(setup_mod, "GO_TOOLS", {"kubeconform": "example.invalid/no/such/module@v0.0.1"})
    monkeypatch.setenv("GOPROXY", "off")  # no network needed to fail
    monkeypatch.setenv("GOFLAGS", "-mod=mod")
    with pytest.raises(setup_mod.SetupError, match=r"^`go install example.invalid/no/such/module@v0.0.1` failed: "):
        setup_mod.install_go_tools(settings)
