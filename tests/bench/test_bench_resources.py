"""bench.resources over a fake /proc tree, and over this very process."""
from __future__ import annotations

import os
from pathlib import Path

from bench.resources import RssSampler, parent_map, read_status_kib, tree


def fake_proc(root: Path, procs: dict[int, tuple[int, int, int]]) -> Path:
    """pid -> (ppid, VmHWM kB, VmRSS kB)"""
    for pid, (ppid, hwm, rss) in procs.items():
        d = root / str(pid)
        d.mkdir(parents=True)
        (d / "stat").write_text(f"{pid} (odd name) x) S {ppid} 1 1 0\n")
        (d / "status").write_text(f"Name:\tx\nVmPeak:\t9 kB\nVmHWM:\t{hwm} kB\nVmRSS:\t{rss} kB\n")
    (root / "self").mkdir()
    return root


def test_tree_and_peaks_from_a_fake_proc(tmp_path):
    proc = fake_proc(tmp_path, {10: (1, 1000, 800), 11: (10, 2048, 2000), 12: (11, 512, 100), 20: (1, 4096, 4000)})
    children = parent_map(proc)
    assert sorted(tree(10, children)) == [10, 11, 12]
    assert read_status_kib(11, proc) == {"VmHWM": 2048, "VmRSS": 2000}
    assert read_status_kib(99, proc) is None
    sampler = RssSampler(lambda: {"job": 10, "kafka": 20}, proc=proc)
    sampler.sample()
    (proc / "11" / "status").write_text("VmHWM:\t3072 kB\nVmRSS:\t10 kB\n")
    sampler.sample()
    assert sampler.peaks_mib() == {"job": round((1000 + 3072 + 512) / 1024, 1), "kafka": 4.0}
    assert sampler.simultaneous_peak_kib == 800 + 2000 + 100 + 4000


def test_sampler_reads_this_process():
    sampler = RssSampler(lambda: {"me": os.getpid()})
    sampler.sample()
    assert sampler.peaks_mib()["me"] > 10


def _stat(pid: int, ppid: int, utime: int, stime: int) -> str:
    # fields after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    return f"{pid} (odd name) x) S {ppid} 1 1 0 -1 0 0 0 0 0 {utime} {stime} 0 0\n"


def test_cpu_meter_sums_trees_between_marks_and_keeps_exited_processes(tmp_path):
    from bench.resources import CLOCK_TICKS, CpuMeter

    fake_proc(tmp_path, {10: (1, 1, 1), 11: (10, 1, 1), 20: (1, 1, 1)})
    for pid, comm in ((10, "python"), (11, "java"), (20, "java")):
        (tmp_path / str(pid) / "comm").write_text(comm + "\n")

    def tick(ticks: dict[int, tuple[int, int]]) -> None:
        for pid, (utime, stime) in ticks.items():
            ppid = {10: 1, 11: 10, 20: 1}[pid]
            (tmp_path / str(pid) / "stat").write_text(_stat(pid, ppid, utime, stime))

    meter = CpuMeter(lambda: {"job": 10, "kafka": 20}, proc=tmp_path)
    tick({10: (100, 0), 11: (50, 50), 20: (10, 0)})
    meter.mark("first")
    tick({10: (300, 0), 11: (450, 50), 20: (10, 10)})
    meter.sample()
    import shutil

    shutil.rmtree(tmp_path / "11")  # the JVM exits: what it used until the last sample still counts
    meter.mark("last")
    got = meter.between("first", "last")
    assert got["job"] == round((200 + 400) / CLOCK_TICKS, 2)
    assert got["job/python"] == round(200 / CLOCK_TICKS, 2) and got["job/java"] == round(400 / CLOCK_TICKS, 2)
    assert got["kafka"] == round(10 / CLOCK_TICKS, 2) and "kafka/java" not in got  # one process: no split


def test_a_full_run_is_sampled_per_child_by_its_yuqing_role(tmp_path):
    """`yuqing run`'s children are named by their subcommand; the run process itself is a
    root of its own, so its children's memory is not counted twice."""
    from bench.resources import run_roots, yuqing_role

    proc = fake_proc(tmp_path, {100: (1, 50, 50), 101: (100, 900, 800), 102: (101, 3000, 2900),
                                103: (100, 80, 80), 104: (100, 70, 70), 200: (1, 1500, 1400)})
    for pid, args in {100: ["python", "-m", "yuqing", "run", "--plain"], 101: ["python", "-m", "yuqing", "job", "run"],
                      102: ["java", "-cp", "x"], 103: ["/venv/bin/yuqing", "report-server"],
                      104: ["python", "-m", "yuqing", "crawl", "--jsonl", "s.jsonl"]}.items():
        (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
    assert yuqing_role(101, proc) == "job" and yuqing_role(102, proc) is None and yuqing_role(103, proc) == "report-server"
    roots = run_roots(lambda: {"kafka": 200}, 100, proc)()
    assert roots == {"kafka": 200, "run": 100, "run:job": 101, "run:report-server": 103, "run:crawl": 104}
    sampler = RssSampler(lambda: {k: v for k, v in roots.items() if k != "run"}, proc=proc)
    sampler.sample()
    assert sampler.peaks_mib()["run:job"] == round((900 + 3000) / 1024, 1)
