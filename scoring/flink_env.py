"""Build PyFlink environments the way every Yuqing job needs them.

Why a helper: the traps in FACTS.md. The Kafka connector jar is not in PyFlink and must
be the shaded one; Python workers run whatever `python` is on PATH unless told; and each
local run leaves ~24 MB in /tmp unless TMPDIR and java.io.tmpdir point elsewhere.
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
from pathlib import Path

from core.config import Settings


def in_cluster_client() -> bool:
    """True when `flink run` (or a JobManager in application mode) started this program:
    PyFlink then talks to that JVM through PYFLINK_GATEWAY_PORT, and the cluster's own
    configuration decides addresses, temp dirs, checkpoint storage and the workers' Python."""
    return "PYFLINK_GATEWAY_PORT" in os.environ


def _prune_dead_runs(parent: Path) -> None:
    """Temp folders of runs whose process is gone (killed, crashed) are removed."""
    for child in parent.glob("run-*"):
        try:
            pid = int(child.name.split("-", 1)[1])
        except ValueError:
            continue
        if not Path(f"/proc/{pid}").exists():
            shutil.rmtree(child, ignore_errors=True)


class FlinkSetupError(RuntimeError):
    """PyFlink is missing or incomplete in this Python (one line, says how to fix it)."""


def pyflink_home() -> Path:
    """The Flink distribution inside the installed apache-flink package (bin/, conf/, lib/)."""
    import importlib.util

    spec = importlib.util.find_spec("pyflink")
    if spec is None or not spec.origin:
        raise FlinkSetupError("PyFlink is not installed in this Python: run `make setup` (pip install -e .)")
    home = Path(spec.origin).parent
    if not (home / "bin" / "jobmanager.sh").is_file():
        raise FlinkSetupError(f"{home} has no bin/jobmanager.sh: reinstall apache-flink")
    return home


def flink_cluster_dir(settings: Settings) -> Path:
    """Where the local standalone cluster keeps its config, logs and temp files."""
    return settings.state_dir / "flink-cluster"


def flink_conf_dir(settings: Settings) -> Path:
    return flink_cluster_dir(settings) / "conf"


JIT_OPTIONS = {"c1": "-XX:TieredStopAtLevel=1", "tiered": ""}


def local_jvm_args(settings: Settings, current: str, tmp: Path) -> str:
    """JVM_ARGS for the local mini-cluster's JVM: temp dir, heap cap and JIT, unless the
    user's JVM_ARGS already set them."""
    opts = current.strip()
    if "java.io.tmpdir" not in opts:
        opts = f"{opts} -Djava.io.tmpdir={tmp}".strip()
    if "-Xmx" not in opts:
        if settings.flink.local_heap_mb < 256:
            from core.config import ConfigError

            raise ConfigError(f"flink.local_heap_mb: at least 256 (MiB), got {settings.flink.local_heap_mb}")
        opts = f"{opts} -Xmx{settings.flink.local_heap_mb}m"
    jit = settings.flink.local_jit
    if jit not in JIT_OPTIONS:
        from core.config import ConfigError

        raise ConfigError(f"flink.local_jit: one of {', '.join(JIT_OPTIONS)}, got {jit!r}")
    if JIT_OPTIONS[jit] and "Tiered" not in opts:
        opts = f"{opts} {JIT_OPTIONS[jit]}"
    return opts


def prepare_process_env(settings: Settings) -> Path:
    """Point temp files at the state folder before the JVM starts; returns that folder.
    Each process gets its own, removed at exit (a local run leaves ~24 MB otherwise)."""
    parent = settings.state_dir / "tmp" / "flink"
    parent.mkdir(parents=True, exist_ok=True)
    _prune_dead_runs(parent)
    tmp = parent / f"run-{os.getpid()}"
    if not tmp.exists():
        tmp.mkdir()
        atexit.register(shutil.rmtree, tmp, True)
    os.environ["TMPDIR"] = str(tmp)
    os.environ["JVM_ARGS"] = local_jvm_args(settings, os.environ.get("JVM_ARGS", ""), tmp)
    import site
    import tempfile

    tempfile.tempdir = str(tmp)
    # Thread mode embeds CPython in the JVM (pemja), which does not see a venv's packages
    # unless they are on PYTHONPATH; process mode inherits it too (harmless).
    paths = [p for p in site.getsitepackages() if p.endswith("site-packages")]
    paths.append(str(Path(__file__).resolve().parent.parent))
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths + current))
    return tmp


def stream_env(settings: Settings, parallelism: int = 1, *, python_mode: str = "process",
               checkpoint_interval_ms: int | None = None, checkpoint_dir: Path | None = None,
               extra_config: dict[str, str] | None = None):
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    if in_cluster_client():
        return _cluster_stream_env(settings, parallelism, python_mode, checkpoint_interval_ms, checkpoint_dir,
                                   extra_config)
    tmp = prepare_process_env(settings)
    config = Configuration()
    config.set_string("pipeline.jars", settings.flink_connector_jar.as_uri())
    config.set_string("python.executable", sys.executable)
    config.set_string("python.client.executable", sys.executable)
    config.set_string("python.execution-mode", python_mode)
    config.set_string("io.tmp.dirs", str(tmp))
    config.set_string("env.java.opts.all", f"-Djava.io.tmpdir={tmp}")
    config.set_string("rest.bind-address", "127.0.0.1")
    config.set_string("rest.address", "127.0.0.1")
    # the mini-cluster's REST endpoint runs no uploaded jar (web.cancel stays on: it also
    # gates the REST cancel that `yuqing job cancel` uses; the endpoint is loopback only)
    config.set_string("web.submit.enable", "false")
    config.set_string("taskmanager.memory.managed.size", "256m")
    if checkpoint_dir is not None:
        config.set_string("execution.checkpointing.dir", checkpoint_dir.as_uri())
        config.set_string("state.checkpoints.dir", checkpoint_dir.as_uri())
    for key, value in (extra_config or {}).items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(parallelism)
    if checkpoint_interval_ms:
        env.enable_checkpointing(checkpoint_interval_ms)
    return env


def _cluster_stream_env(settings: Settings, parallelism: int, python_mode: str,
                        checkpoint_interval_ms: int | None, checkpoint_dir: Path | None,
                        extra_config: dict[str, str] | None):
    """Only job-level options: the cluster keeps its addresses, temp dirs and Python."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    config = Configuration()
    config.set_string("python.execution-mode", python_mode)
    if checkpoint_dir is not None:
        config.set_string("execution.checkpointing.dir", checkpoint_dir.as_uri())
    for key, value in (extra_config or {}).items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    # appended, not set: `flink run -py` already lists flink-python's jar there
    env.add_jars(settings.flink_connector_jar.as_uri())
    env.set_parallelism(parallelism)
    if checkpoint_interval_ms:
        env.enable_checkpointing(checkpoint_interval_ms)
    return env
