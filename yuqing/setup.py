"""`yuqing setup`: everything a fresh machine needs, from the package registries only."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from core.config import REPO_ROOT, Settings

DEBIAN_PACKAGES = {
    # binary on PATH -> Debian package
    "clickhouse-server": "clickhouse-server",
    "clickhouse-client": "clickhouse-client",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "java": "openjdk-17-jre-headless",
    "mvn": "maven",
    "chromium": "chromium",  # renders the weekly report in its test (headless screenshot)
}
# Go tools, installed from the Go module proxy into the lib folder (pinned here); the deploy
# tests fail (not skip) when one is missing, since setup installs them.
GO_TOOLS = {
    "kubeconform": "github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0",  # offline k8s manifest checks
    "kustomize": "sigs.k8s.io/kustomize/kustomize/v5@v5.5.0",  # renders deploy/k8s as `kubectl apply -k` would
}
# Go programs that `go install` refuses (their go.mod has exclude/replace directives): built
# in a throw-away module instead. binary -> (package, module@version)
GO_BUILDS = {
    # the real Docker Compose client checks deploy/compose (`config --quiet` needs no daemon)
    "docker-compose": ("github.com/docker/compose/v5/cmd", "github.com/docker/compose/v5@v5.6.0"),
}
GO_TIMEOUT_S = 1200
# Without a `go` on PATH (Debian's is too old for these modules), setup fetches this Go
# toolchain, itself a module on the Go module proxy (what `GOTOOLCHAIN=auto` downloads).
GO_TOOLCHAIN = "go1.26.0"
GO_PROXY = os.environ.get("GOPROXY", "https://proxy.golang.org").split(",")[0].split("|")[0]
POM = REPO_ROOT / "deploy" / "maven" / "pom.xml"


class SetupError(RuntimeError):
    pass


def _say(message: str) -> None:
    print(f"setup: {message}", file=sys.stderr, flush=True)


def missing_packages() -> list[str]:
    return sorted({pkg for binary, pkg in DEBIAN_PACKAGES.items() if shutil.which(binary) is None})


def install_debian_packages() -> None:
    missing = missing_packages()
    if not missing:
        _say("Debian packages present")
        return
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        raise SetupError(f"missing Debian packages; run as root: sudo apt-get update && sudo {' '.join(command)}")
    _say(f"installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for step in (["apt-get", "update", "-q"], command):
        t0 = time.monotonic()
        try:
            result = subprocess.run(step, env=env, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise SetupError(f"`{' '.join(step)}` took over 15 minutes; check the package mirror") from None
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SetupError(f"`{' '.join(step)}` failed: {tail[0]}")
        _say(f"  {' '.join(step[:2])} done in {time.monotonic() - t0:.0f} s")


def fetch_jars(settings: Settings) -> None:
    kafka_ok = any((settings.lib_dir / "kafka").glob("kafka_2.13-*.jar"))
    flink_ok = any((settings.lib_dir / "flink").glob("flink-sql-connector-kafka-*.jar"))
    if kafka_ok and flink_ok and _jars_match_pom(settings):
        _say(f"jars present in {settings.lib_dir}")
        return
    if shutil.which("mvn") is None:
        raise SetupError("`mvn` not found: install Maven (apt-get install maven) and run setup again")
    shutil.rmtree(settings.lib_dir, ignore_errors=True)
    _say(f"fetching the Kafka broker and Flink Kafka connector with mvn (pinned in {POM})")
    command = ["mvn", "-B", "-q", "-f", str(POM), "package", f"-Dyuqing.lib.dir={settings.lib_dir}"]
    t0 = time.monotonic()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise SetupError("mvn took over 15 minutes; is Maven Central reachable?") from None
    if result.returncode != 0:
        errors = [l for l in (result.stdout + result.stderr).splitlines() if "ERROR" in l] or ["no output"]
        raise SetupError(f"mvn failed: {errors[0][:300]}")
    _say(f"  jars fetched in {time.monotonic() - t0:.0f} s")


def pinned_versions() -> dict[str, str]:
    import xml.etree.ElementTree as ET

    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    props = ET.parse(POM).getroot().find("m:properties", ns)
    return {child.tag.split("}")[1]: (child.text or "").strip() for child in props}


def _jars_match_pom(settings: Settings) -> bool:
    v = pinned_versions()
    return (settings.lib_dir / "kafka" / f"kafka_2.13-{v['kafka.version']}.jar").exists() and (
        settings.lib_dir / "flink" / f"flink-sql-connector-kafka-{v['flink.kafka.connector.version']}.jar"
    ).exists()


def go_tool_path(settings: Settings, name: str) -> Path:
    return settings.lib_dir / "bin" / name


def fetch_go_toolchain(settings: Settings) -> Path:
    """GOROOT of a Go toolchain in the lib folder, fetched from the Go module proxy if absent."""
    import platform
    import urllib.request
    import zipfile

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    version = f"v0.0.1-{GO_TOOLCHAIN}.{sys.platform}-{arch}"
    root = settings.lib_dir / "go" / GO_TOOLCHAIN
    if (root / "bin" / "go").is_file():
        return root
    url = f"{GO_PROXY}/golang.org/toolchain/@v/{version}.zip"
    _say(f"`go` not found: fetching the {GO_TOOLCHAIN} toolchain from the Go module proxy")
    archive = settings.lib_dir / "go" / f"{version}.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(archive, "wb") as out:
            shutil.copyfileobj(resp, out)
    except OSError as exc:
        raise SetupError(f"cannot fetch the Go toolchain {url}: {exc}; install Go (1.22 or newer) and run setup again") from None
    prefix = f"golang.org/toolchain@{version}/"
    shutil.rmtree(root, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if not info.filename.startswith(prefix) or info.is_dir():
                continue
            target = root / info.filename[len(prefix):]
            if ".." in Path(info.filename[len(prefix):]).parts:
                raise SetupError(f"{archive}: unsafe path {info.filename}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    archive.unlink()
    # module zips keep no file modes: the toolchain's programs are bin/* and pkg/tool/*/*
    for exe in list((root / "bin").glob("*")) + list((root / "pkg" / "tool").glob("*/*")):
        exe.chmod(0o755)
    if not (root / "bin" / "go").is_file():
        raise SetupError(f"the Go toolchain from {url} has no bin/go")
    return root


def _go(args: list[str], env: dict[str, str], cwd: Path | None, what: str) -> None:
    try:
        result = subprocess.run([shutil.which("go", path=env.get("PATH")) or "go", *args], env=env, cwd=cwd,
                                capture_output=True, text=True, timeout=GO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SetupError(f"`go {' '.join(args)}` took over {GO_TIMEOUT_S // 60} minutes; "
                         "is the Go module proxy reachable?") from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SetupError(f"{what} failed: {tail[0]}")


def install_go_tools(settings: Settings) -> None:
    """kubeconform, kustomize and docker-compose into the lib folder's bin/ (pinned)."""
    bin_dir = settings.lib_dir / "bin"
    wanted = list(GO_TOOLS) + list(GO_BUILDS)
    missing = [name for name in wanted if not go_tool_path(settings, name).exists()]
    if not missing:
        _say(f"tools present in {bin_dir}")
        return
    go = shutil.which("go") or str(fetch_go_toolchain(settings) / "bin" / "go")
    bin_dir.mkdir(parents=True, exist_ok=True)
    # GOTOOLCHAIN=auto: an older Go fetches the toolchain a module needs from the proxy
    env = dict(os.environ, GOBIN=str(bin_dir), GOFLAGS="-mod=mod", GOTOOLCHAIN="auto")
    env["PATH"] = f"{Path(go).parent}{os.pathsep}{env.get('PATH', '')}"
    for name in missing:
        t0 = time.monotonic()
        if name in GO_TOOLS:
            _go(["install", GO_TOOLS[name]], env, None, f"`go install {GO_TOOLS[name]}`")
        else:
            package, module = GO_BUILDS[name]
            work = settings.lib_dir / "go-build" / name
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            build_env = {k: v for k, v in env.items() if k != "GOBIN"}
            _go(["mod", "init", f"yuqing.local/build/{name}"], build_env, work, f"building {name}")
            _go(["get", f"{package}@{module.rsplit('@', 1)[1]}"], build_env, work, f"`go get {module}`")
            _go(["build", "-o", str(go_tool_path(settings, name)), package], build_env, work, f"`go build {package}`")
            shutil.rmtree(work, ignore_errors=True)
        _say(f"  {name} installed in {time.monotonic() - t0:.0f} s")


def build_models(settings: Settings) -> None:
    try:
        from scoring.sentiment import load_model  # noqa: F401
    except ImportError:
        _say("sentiment package not present; skipping the default model")
        return
    t0 = time.monotonic()
    load_model()
    _say(f"default sentiment model ready ({time.monotonic() - t0:.1f} s)")


def run_setup(settings: Settings, skip_apt: bool = False, skip_models: bool = False) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if not skip_apt:
        install_debian_packages()
    fetch_jars(settings)
    install_go_tools(settings)
    if not skip_models:
        build_models(settings)
    _say("done")
