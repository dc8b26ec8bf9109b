"""``vidcolor batch --ray local``: a real Ray cluster of 2 CPUs on this machine, listening on
127.0.0.1 only; a worker killed in the middle of a film, its film finished by the worker
Ray starts again, every film whole and nothing partial left."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import colour_reference, partial_files, read_clip, subprocess_env, write_clip, write_png
from vidcolor.batch.run import REPORT

ray = pytest.importorskip("ray", reason="Ray is in the test extra: pip install -e '.[test]'")

FILMS = ("a.mp4", "b.mp4", "c.mkv")


def processes(title: str) -> dict[int, str]:
    """Running processes whose command line starts with ``title`` (Ray names its workers
    by the task they run: ``ray::Worker.run``)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if command.startswith(title):
            found[int(entry.name)] = command
    return found


def descendants(root: int) -> set[int]:
    """``root`` and every process started under it."""
    parents = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, grown = {root}, True
    while grown:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grown = bool(more)
    return found


def listening_addresses(pids: set[int]) -> set[str]:
    """The local addresses of the TCP sockets the processes ``pids`` listen on."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    addresses = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                raw = bytes.fromhex(fields[1].split(":")[0])
                words = [raw[i:i + 4][::-1] for i in range(0, width, 4)]  # each 32-bit word little-endian
                address = ipaddress.ip_address(b"".join(words))
                addresses.add(str(getattr(address, "ipv4_mapped", None) or address))
    return addresses


def unfinished_segments(out: Path) -> list[Path]:
    """Resume folders of the batch's films holding at least one finished segment."""
    found = []
    for manifest in out.glob(".*.resume/segments.json"):
        try:
            if json.loads(manifest.read_text())["segments"]:
                found.append(manifest.parent)
        except (OSError, ValueError, KeyError):
            continue
    return found


def test_a_worker_killed_mid_film_leaves_a_whole_batch(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in FILMS:
        write_clip(archive / name, frames=300, audio="aac")  # two segments of 10 s each
    write_png(archive / "still.png", colour_reference())
    out = tmp_path / "out"
    raylets_before = set(processes(str(Path(ray.__file__).parent / "core/src/ray/raylet/raylet")))
    batch = subprocess.Popen(
        [sys.executable, "-m", "vidcolor", "batch", str(archive), "-o", str(out), "--auto", "--model", "eccv16",
         "--auto-mode", "per-frame", "--work-res", "48", "--ray", "local", "--workers", "2", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    killed = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and batch.poll() is None:
            if unfinished_segments(out):
                workers = processes("ray::Worker.run")
                if workers:
                    listening = listening_addresses(descendants(batch.pid))
                    killed = min(workers)
                    os.kill(killed, signal.SIGKILL)  # the hardest stop: no chance to clean up
                    break
            time.sleep(0.05)
        assert killed is not None, "no worker was caught in the middle of a film"
        stdout, stderr = batch.communicate(timeout=600)
    finally:
        if batch.poll() is None:
            batch.kill()
            batch.communicate()
    assert batch.returncode == 0, stderr
    assert listening == {"127.0.0.1"}  # the cluster listened on loopback only
    assert "Traceback" not in stderr
    report = json.loads((out / REPORT).read_text())
    assert report["workers"] == 2
    assert report["summary"]["coloured"] == len(FILMS) + 1 and report["summary"]["failed"] == 0
    entries = {Path(e["source"]).name: e for e in report["jobs"]}
    assert killed not in {e["worker"] for e in entries.values()}  # each job ended on a live worker
    assert len({e["worker"] for e in entries.values()}) >= 2  # and two worked side by side
    resumed = [json.loads((out / Path(name).with_suffix(".report.json")).read_text())["resumed_from"] for name in FILMS]
    assert 240 in resumed  # the killed worker's film went on from its finished segment
    for name in FILMS:
        coloured, source = read_clip(out / name, pixels=False), read_clip(archive / name, pixels=False)
        assert coloured.frames == source.frames == 300
        assert coloured.times == source.times
        assert coloured.audio and coloured.audio == source.audio
    assert (out / "still.png").is_file()
    assert partial_files(out) == [] and not list(out.glob(".*.resume")) and not list(out.glob(".*.lock"))
    # the cluster was stopped with the batch
    deadline = time.monotonic() + 30
    while set(processes(str(Path(ray.__file__).parent / "core/src/ray/raylet/raylet"))) - raylets_before:
        assert time.monotonic() < deadline, "the local Ray cluster outlived its batch"
        time.sleep(0.5)
