"""Run the scoring job on a Flink cluster and manage it there: submit, list, cancel, and
stop with a savepoint (the upgrade path: stop -> new code -> submit --from-savepoint).

Submission goes through PyFlink's own `bin/flink run -py` (the client runs scoring/job.py,
which builds the job graph and ships it with the connector jar); everything else is the
cluster's REST API. Every call has a timeout, and failures are one line (`JobCtlError`).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from core.config import REPO_ROOT, Settings
from scoring.flink_env import FlinkSetupError, flink_cluster_dir, flink_conf_dir, pyflink_home

JOB_SCRIPT = REPO_ROOT / "scoring" / "job.py"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
SUBMITTED = re.compile(r"JobID ([0-9a-f]{32})")
TERMINAL = ("FINISHED", "FAILED", "CANCELED")


class JobCtlError(RuntimeError):
    """One line: what went wrong and what to do."""


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    name: str
    state: str
    start_time_ms: int
    duration_ms: int

    @classmethod
    def from_rest(cls, d: dict) -> "JobInfo":
        return cls(d["jid"], d.get("name", ""), d.get("state", ""), int(d.get("start-time", 0)),
                   int(d.get("duration", 0)))


def cluster_url(settings: Settings, url: str | None) -> str:
    """`--cluster` (host:port or http://host:port) or the local cluster of `stack up --flink-cluster`."""
    if not url:
        return settings.flink.url
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or not parsed.port:
        raise JobCtlError(f"bad cluster address {url!r}: expected http://HOST:PORT of the Flink REST endpoint")
    return url


def check_job_id(job_id: str) -> str:
    if not JOB_ID.match(job_id or ""):
        raise JobCtlError(f"bad job id {job_id!r}: expected 32 hex digits (see `yuqing job list`)")
    return job_id


def rest(url: str, path: str, method: str = "GET", body: dict | None = None, timeout_s: float = 10.0) -> dict:
    """One REST call; Flink's error list becomes the message."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            text = resp.read()
    except urllib.error.HTTPError as exc:
        try:
            errors = json.loads(exc.read()).get("errors") or []
        except (ValueError, AttributeError):
            errors = []
        detail = str(errors[0]).strip().splitlines()[0][:300] if errors else exc.reason
        raise JobCtlError(f"{method} {url}{path} failed: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise JobCtlError(f"no Flink cluster answers at {url} ({reason}): start one with "
                          "`yuqing stack up --flink-cluster`, or pass --cluster URL") from None
    return json.loads(text) if text.strip() else {}


def list_jobs(url: str, timeout_s: float = 10.0) -> list[JobInfo]:
    jobs = rest(url, "/jobs/overview", timeout_s=timeout_s).get("jobs", [])
    return sorted((JobInfo.from_rest(j) for j in jobs), key=lambda j: j.start_time_ms, reverse=True)


def job_state(url: str, job_id: str, timeout_s: float = 10.0) -> str:
    return rest(url, f"/jobs/{check_job_id(job_id)}", timeout_s=timeout_s).get("state", "UNKNOWN")


def wait_for_state(url: str, job_id: str, wanted: tuple[str, ...], timeout_s: float = 120.0,
                   request_timeout_s: float = 10.0) -> str:
    """Poll until the job is in one of `wanted` (or ends otherwise); returns the state."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = job_state(url, job_id, request_timeout_s)
        if state in wanted:
            return state
        if state in TERMINAL:
            raise JobCtlError(f"job {job_id} ended {state} (wanted {'/'.join(wanted)}); see the cluster logs")
        if time.monotonic() > deadline:
            raise JobCtlError(f"job {job_id} is still {state} after {timeout_s:.0f} s (wanted {'/'.join(wanted)})")
        time.sleep(0.5)


def wait_all_tasks_running(url: str, job_id: str, timeout_s: float = 120.0, request_timeout_s: float = 10.0) -> None:
    """RUNNING is not enough for a savepoint: every task must have been deployed and started."""
    deadline = time.monotonic() + timeout_s
    while True:
        detail = rest(url, f"/jobs/{check_job_id(job_id)}", timeout_s=request_timeout_s)
        state = detail.get("state")
        if state in TERMINAL:
            raise JobCtlError(f"job {job_id} ended {state}; see the cluster logs")
        vertices = detail.get("vertices", [])
        if state == "RUNNING" and vertices and all(v.get("status") == "RUNNING" for v in vertices):
            return
        if time.monotonic() > deadline:
            raise JobCtlError(f"the tasks of job {job_id} are not all running after {timeout_s:.0f} s")
        time.sleep(0.5)


def cancel(url: str, job_id: str, timeout_s: float = 10.0) -> None:
    rest(url, f"/jobs/{check_job_id(job_id)}?mode=cancel", method="PATCH", timeout_s=timeout_s)


def stop_with_savepoint(url: str, job_id: str, target_dir: str | Path, drain: bool = False,
                        timeout_s: float = 180.0, request_timeout_s: float = 10.0) -> str:
    """Take a savepoint, then stop the job; returns the savepoint's location.

    Without `drain` open windows stay open (in the savepoint) instead of being fired early:
    that is what an upgrade needs."""
    check_job_id(job_id)
    target = str(target_dir)
    if "://" not in target:
        target = str(Path(target).expanduser().resolve())
    trigger = rest(url, f"/jobs/{job_id}/stop", method="POST",
                   body={"targetDirectory": target, "drain": drain}, timeout_s=request_timeout_s)
    request_id = trigger.get("request-id")
    if not request_id:
        raise JobCtlError(f"the cluster did not accept the stop of job {job_id}: {trigger}")
    deadline = time.monotonic() + timeout_s
    while True:
        answer = rest(url, f"/jobs/{job_id}/savepoints/{request_id}", timeout_s=request_timeout_s)
        if (answer.get("status") or {}).get("id") == "COMPLETED":
            operation = answer.get("operation") or {}
            if "location" in operation:
                return operation["location"]
            cause = operation.get("failure-cause") or {}
            message = (cause.get("stack-trace") or cause.get("class") or "unknown cause").strip().splitlines()[0]
            raise JobCtlError(f"stop-with-savepoint of job {job_id} failed: {message[:300]}")
        if time.monotonic() > deadline:
            raise JobCtlError(f"the savepoint of job {job_id} did not complete within {timeout_s:.0f} s")
        time.sleep(0.5)


# ------------------------------------------------------------------ submission

def _is_local(settings: Settings, url: str) -> bool:
    parsed = urllib.parse.urlparse(url)
    return parsed.port == settings.flink.rest_port and parsed.hostname in (settings.flink.host, "localhost", "127.0.0.1")


def _pyflink_home() -> Path:
    try:
        return pyflink_home()
    except FlinkSetupError as exc:
        raise JobCtlError(str(exc)) from None


def submit_command(settings: Settings, url: str, job_args: list[str], savepoint: str | None = None) -> list[str]:
    """`bin/flink run -d -py scoring/job.py ARGS` against the cluster's REST endpoint."""
    parsed = urllib.parse.urlparse(url)
    command = ["bash", str(_pyflink_home() / "bin" / "flink"), "run", "-m", f"{parsed.hostname}:{parsed.port}",
               "-d", "-pyclientexec", sys.executable]
    if savepoint:
        command += ["-s", savepoint]
    return command + ["-py", str(JOB_SCRIPT)] + job_args


def submit_env(settings: Settings, url: str) -> dict[str, str]:
    """The client's environment: our conf dir for our cluster (it names the venv's Python
    for the workers), the distribution's for another; logs and temp files in the state folder."""
    work = flink_cluster_dir(settings)
    (work / "log").mkdir(parents=True, exist_ok=True)
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    conf = flink_conf_dir(settings)
    env = dict(os.environ)
    env["FLINK_CONF_DIR"] = str(conf if _is_local(settings, url) and (conf / "config.yaml").is_file()
                                else _pyflink_home() / "conf")
    env["FLINK_LOG_DIR"] = str(work / "log")
    env["TMPDIR"] = str(work / "tmp")
    env["JVM_ARGS"] = f"{env.get('JVM_ARGS', '')} -Djava.io.tmpdir={work / 'tmp'}".strip()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def submit(settings: Settings, url: str, job_args: list[str], savepoint: str | None = None,
           slots: int = 1, timeout_s: float = 300.0) -> str:
    """Submit detached; returns the job id once the cluster has accepted the job."""
    overview = rest(url, "/overview", timeout_s=settings.flink.request_timeout_s)
    free = overview.get("slots-available", 0)
    if free < slots:
        raise JobCtlError(f"the Flink cluster at {url} has {free} free task slot(s), the job needs {slots} "
                          f"({overview.get('jobs-running', 0)} job(s) running): cancel or stop one first")
    try:
        result = subprocess.run(submit_command(settings, url, job_args, savepoint), capture_output=True,
                                text=True, timeout=timeout_s, env=submit_env(settings, url), cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        raise JobCtlError(f"`flink run` did not finish within {timeout_s:.0f} s") from None
    found = SUBMITTED.search(result.stdout + result.stderr)
    if result.returncode != 0 or not found:
        raise JobCtlError(f"`flink run` failed (exit {result.returncode}): {_cause(result.stdout + result.stderr)}")
    return found.group(1)


def _cause(output: str) -> str:
    """The most telling line of a Flink client failure (the last 'Caused by', else the last line)."""
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    caused = [l for l in lines if l.startswith("Caused by:") or "Error:" in l or "Exception:" in l]
    pick = (caused or lines or ["no output"])[-1]
    return pick[:400]
