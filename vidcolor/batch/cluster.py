"""A batch on a Ray cluster: one actor per worker, jobs handed to whichever is free.

Each worker is a Ray actor that reserves one CPU (and ``gpus_per_worker`` GPUs: Ray then
shows it only its own, so ``device=auto`` takes them), colours with one torch thread per
CPU and keeps its networks loaded between jobs (``vidcolor.models.kept``). The driver keeps
every worker busy with one job at a time, the rest queued, so a long film does not hold
back the jobs behind it on other workers. A worker that dies (its process killed, its
machine gone) is started again by Ray and its job is run again, up to ``retries`` times;
the job then resumes from the segments the dead worker finished, through the same files,
locks and renames as any run, so a crashed worker leaves nothing broken and two workers
never write one output. Results are written to the output folder, which every machine
must reach at the same path as the driver (a shared disk): the sources too, or give their
paths as each machine mounts them.

``address="local"`` starts a cluster on this machine for the batch (``workers`` CPUs, by
default all of them, listening on 127.0.0.1 only) and stops it at the end; any other
address joins a running cluster (``ray start --head`` on one machine, ``ray start
--address=HEAD:6379`` on the others), where ``workers`` defaults to its CPUs.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Callable

from vidcolor.batch.plan import Job
from vidcolor.errors import InputError

LOOPBACK = "127.0.0.1"
LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": this node is no part of a cluster


class Worker:
    """A Ray actor's state: the batch's options and the loaded networks."""

    def __init__(self, options: dict, threads: int = 1):
        import torch

        from vidcolor import console
        from vidcolor.models.kept import keep_loaded

        torch.set_num_threads(threads)
        console.setup(quiet=True)  # the driver shows the batch's progress; errors come back in entries
        keep_loaded()
        self.options = options

    def run(self, job: Job, part: tuple[int, int | None] | None = None) -> dict:
        from vidcolor.batch.run import run_job

        return {**run_job(job, self.options, part), "worker": os.getpid()}

    def join(self, job: Job) -> dict:
        from vidcolor.batch.run import join_job

        return {**join_job(job, self.options), "worker": os.getpid()}


def parts_of(job: Job, options: dict, part_seconds: float) -> list[tuple[int, int | None]] | None:
    """The ranges of segments a long film is coloured in, about ``part_seconds`` each (the
    last one open-ended, so a frame count that the container misstates loses nothing);
    None for a picture, a film of one part, a job already done, or one that cannot be read
    (its own run says why)."""
    from vidcolor.api import seconds
    from vidcolor.errors import VidcolorError
    from vidcolor.io.segments import SEGMENT_SECONDS, segment_length
    from vidcolor.io.video_reader import VideoReader

    if not job.film or job.output.exists():
        return None
    settings = {**options, **job.options}
    try:
        with VideoReader(job.source, start=seconds(settings.get("start"), "start"),
                         end=seconds(settings.get("end"), "end"), copy=False) as reader:
            info = reader.info
    except (VidcolorError, OSError):
        return None
    size = segment_length(info.rate)
    total = -(-info.frames // size)  # segments
    each = max(1, round(part_seconds / SEGMENT_SECONDS))
    starts = list(range(0, total, each))
    if len(starts) > 1 and total - starts[-1] < each / 2:
        starts.pop()  # a short tail goes with the part before it
    if len(starts) < 2:
        return None
    return [(a, b) for a, b in zip(starts, starts[1:])] + [(starts[-1], None)]


def check(gpus_per_worker: float, retries: int) -> None:
    """Refuse, before any work, a batch that cannot run on Ray."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise InputError("`ray` needs Ray: pip install 'vidcolor[ray]'")
    if gpus_per_worker < 0:
        raise InputError("`gpus_per_worker` must not be negative")
    if retries < 0:
        raise InputError("`retries` must not be negative")


def connect(address: str, workers: int | None) -> bool:
    """Join the cluster at ``address``, or start one here for ``"local"``; whether it was
    started here (and is to be stopped at the end)."""
    if address == "local":
        # Ray takes 127.0.0.1 as the node's address, and binds its servers to it, only where
        # it is told that this node is no part of a cluster; the setting is read when Ray is
        # imported and passed on to every process the cluster starts.
        os.environ.setdefault(LOCAL_ONLY, "0")
    import ray

    if address == "local":
        ray.init(num_cpus=workers or os.cpu_count() or 1, _node_ip_address=LOOPBACK, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        if ray.util.get_node_ip_address() != LOOPBACK:
            ray.shutdown()
            raise InputError(f"`ray=local`: Ray would listen beyond {LOOPBACK} (it was imported before with "
                             f"{LOCAL_ONLY} unset); start a cluster with 'ray start --head' and give its address")
        return True
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise InputError(f"`ray={address}`: no Ray cluster reached ({' '.join(str(e).split())[:200]})") from None
    return False


def run_on_ray(jobs: list[Job], options: dict, address: str, workers: int | None, gpus_per_worker: float,
               retries: int, part_seconds: float | None, ended: Callable[[int, dict], None]) -> None:
    """Colour ``jobs`` on the cluster, films longer than ``part_seconds`` in parts (None:
    never); ``ended(index, entry)`` as each job ends, in the order they end."""
    films = Films(jobs, options, part_seconds)
    started_here = connect(address, workers)
    import ray

    try:
        count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(num_cpus=1, num_gpus=gpus_per_worker, max_restarts=-1,
                            max_task_retries=retries)(Worker)
        idle = [remote.remote(options) for _ in range(min(count, len(films.units)))]
        running: dict = {}  # task -> (unit, actor)
        while films.units or running:
            while films.units and idle:
                unit, actor = films.units.popleft(), idle.pop()
                index, part = unit
                job = jobs[index]
                task = actor.join.remote(job) if part == JOIN else actor.run.remote(job, part)
                running[task] = (unit, actor)
            [task], _ = ray.wait(list(running), num_returns=1)
            (index, part), actor = running.pop(task)
            idle.append(actor)
            try:
                entry = ray.get(task)
            except ray.exceptions.RayError as e:  # the worker died more than `retries` times
                job = jobs[index]
                entry = {"source": str(job.source), "output": str(job.output), "status": "failed",
                         "error": f"its worker died {retries + 1} times ({type(e).__name__})",
                         **({"part": list(part)} if isinstance(part, tuple) else {})}
            done = films.ended(index, part, entry)
            if done is not None:
                ended(index, done)
    finally:
        if started_here:
            ray.shutdown()


JOIN = "join"


class Films:
    """The units of work of a batch (a job, a part of a film, the join of its parts), in a
    queue, and each film's parts as they end."""

    def __init__(self, jobs: list[Job], options: dict, part_seconds: float | None):
        self.units: deque = deque()
        self.parts: dict[int, list[dict]] = {}  # index -> entries of its parts so far
        self.count: dict[int, int] = {}
        for index, job in enumerate(jobs):
            parts = parts_of(job, options, part_seconds) if part_seconds else None
            if parts is None:
                self.units.append((index, None))
            else:
                self.parts[index], self.count[index] = [], len(parts)
                self.units.extend((index, part) for part in parts)

    def ended(self, index: int, part, entry: dict) -> dict | None:
        """The job's entry once the whole job has ended (None: parts are still to come)."""
        if part is None:
            return entry
        if part == JOIN:
            parts = self.parts.pop(index)
            return {**entry, "parts": len(parts), "seconds": round(sum(e.get("seconds", 0) for e in parts + [entry]), 3),
                    "workers": sorted({e["worker"] for e in parts + [entry] if "worker" in e})}
        self.parts[index].append(entry)
        if len(self.parts[index]) < self.count[index]:
            return None
        failed = [e for e in self.parts[index] if e["status"] == "failed"]
        if failed:
            return {**{k: entry[k] for k in ("source", "output")}, "status": "failed", "parts": self.count[index],
                    "error": "; ".join(f"part {e['part'][0]}: {e['error']}" for e in failed)}
        self.units.appendleft((index, JOIN))  # before any other job: the film is nearly done
        return None
