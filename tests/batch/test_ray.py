"""``vidcolor batch --ray local``: a real Ray cluster of 2 CPUs on this machine, listening on
127.0.0.1 only; a worker killed in the middle of a film, its film finished by the worker
Ray starts again; a longer film coloured in two parts side by side and joined; every film
whole and nothing partial left."""

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

FILMS = {"a.mp4": 300, "b.mp4": 300, "c.mkv": 720}  # frames: 2, 2 and 3 segments of 10 s


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


def finished_segments(folder: Path) -> int:
    """Segments listed as finished in a film's resume folder."""
    try:
        return len(json.loads((folder / "segments.json").read_text())["segments"])
    except (OSError, ValueError, KeyError):
        return 0


def writing_into(folder: Path, pids) -> list[int]:
    """Those of ``pids`` with a file of ``folder`` open."""
    found = []
    for pid in pids:
        try:
            if any(os.readlink(fd).startswith(str(folder) + "/") for fd in Path(f"/proc/{pid}/fd").iterdir()):
                found.append(pid)
        except OSError:
            continue
    return found


def test_a_worker_killed_mid_film_leaves_a_whole_batch(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    for name, frames in FILMS.items():
        write_clip(archive / name, frames=frames, audio="aac")
    write_png(archive / "still.png", colour_reference())
    out = tmp_path / "out"
    raylets_before = set(processes(str(Path(ray.__file__).parent / "core/src/ray/raylet/raylet")))
    batch = subprocess.Popen(
        [sys.executable, "-m", "vidcolor", "batch", str(archive), "-o", str(out), "--auto", "--model", "eccv16",
         "--auto-mode", "per-frame", "--work-res", "48", "--ray", "local", "--workers", "2",
         "--part-minutes", "0.34", "-q"],  # parts of 2 segments: c.mkv in two
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    killed = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and batch.poll() is None:
            folder = out / ".a.mp4.resume"
            if finished_segments(folder):
                colouring_a = writing_into(folder, processes("ray::Worker.run"))
                if colouring_a:
                    listening = listening_addresses(descendants(batch.pid))
                    killed = colouring_a[0]
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
    shots = {name: json.loads((out / Path(name).with_suffix(".report.json")).read_text()) for name in FILMS}
    assert shots["a.mp4"]["resumed_from"] == 240  # the killed worker's film went on from its finished segment
    assert "parts" not in entries["a.mp4"] and entries["c.mkv"]["parts"] == 2
    assert entries["c.mkv"]["frames"] == 720 and sum(s["frames"] for s in shots["c.mkv"]["shots"]) == 720
    for name, frames in FILMS.items():
        coloured, source = read_clip(out / name, pixels=False), read_clip(archive / name, pixels=False)
        assert coloured.frames == source.frames == frames
        assert coloured.times == source.times
        assert coloured.audio and coloured.audio == source.audio
    assert (out / "still.png").is_file()
    assert partial_files(out) == [] and not list(out.glob(".*.resume")) and not list(out.glob(".*.lock"))
    # the cluster was stopped with the batch
    deadline = time.monotonic() + 30
    while set(processes(str(Path(ray.__file__).parent / "core/src/ray/raylet/raylet"))) - raylets_before:
        assert time.monotonic() < deadline, "the local Ray cluster outlived its batch"
        time.sleep(0.5)
