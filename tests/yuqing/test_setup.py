"""Set-up failures name their cause; version pins agree across Python and the JVM."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from yuqing import setup as setup_mod
from core.config import load_settings

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
    monkeypatch.setattr(setup_mod.shutil, "which", lambda name, path=None: None)
    # no Go: setup fetches the toolchain from the Go module proxy; if that fails it says so
    # (the deploy tests fail without these tools, so setup must not skip them quietly)
    monkeypatch.setattr(setup_mod, "GO_PROXY", "http://127.0.0.1:9")
    with pytest.raises(setup_mod.SetupError, match=r"^cannot fetch the Go toolchain http://127.0.0.1:9/golang.org/toolchain/@v/"
                                                   r"v0.0.1-go[\d.]+\.linux-\w+\.zip: .*install Go"):
        setup_mod.install_go_tools(settings)


def test_go_toolchain_unpacks_from_a_module_zip_with_modes_and_no_escape(tmp_path, monkeypatch):
    import io
    import sys
    import zipfile

    version = f"v0.0.1-{setup_mod.GO_TOOLCHAIN}.{sys.platform}-amd64"
    prefix = f"golang.org/toolchain@{version}/"

    def make(extra: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(prefix + "bin/go", b"#!/bin/sh\necho go version fake\n")
            zf.writestr(prefix + "pkg/tool/linux_amd64/compile", b"x")
            for name, data in extra.items():
                zf.writestr(name, data)
        return buf.getvalue()

    served = {}

    class Resp(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: Resp(served["zip"]))
    settings = load_settings(env={"YUQING_LIB_DIR": str(tmp_path / "lib")})
    served["zip"] = make({})
    root = setup_mod.fetch_go_toolchain(settings)
    assert (root / "bin" / "go").stat().st_mode & 0o111 and (root / "pkg/tool/linux_amd64/compile").stat().st_mode & 0o111
    assert setup_mod.fetch_go_toolchain(settings) == root  # present: not fetched again
    import shutil
    shutil.rmtree(root)
    served["zip"] = make({prefix + "../../escape": b"x"})
    with pytest.raises(setup_mod.SetupError, match="unsafe path"):
        setup_mod.fetch_go_toolchain(settings)


def test_a_failing_go_build_is_one_clear_line(tmp_path, monkeypatch):
    settings = load_settings(env={"YUQING_LIB_DIR": str(tmp_path / "lib")})
    monkeypatch.setattr(setup_mod, "GO_BUILDS", {})
    monkeypatch.setattr(setup_mod, "GO_TOOLS", {"kubeconform": "example.invalid/no/such/module@v0.0.1"})
    monkeypatch.setenv("GOPROXY", "off")  # no network needed to fail
    monkeypatch.setenv("GOFLAGS", "-mod=mod")
    with pytest.raises(setup_mod.SetupError, match=r"^`go install example.invalid/no/such/module@v0.0.1` failed: "):
        setup_mod.install_go_tools(settings)
