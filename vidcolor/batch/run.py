"""Colouring a batch: every job on its own, here or on a Ray cluster, and the batch's report.

Each job is the ``vidcolor`` command's work on one film or picture, with its rules: the
output appears only when complete, an interrupted film keeps its finished segments. So a
job whose output exists is done and is skipped; a film with an unfinished run is resumed
(started again when that run was made with other settings); a job that fails is recorded
with its one-line error and the batch goes on. ``OUTDIR/report.json`` is written again
(whole, then renamed) as each job ends::

    {"source": "reels/", "outdir": "out/", "seconds": 812.4, "workers": 2,
     "summary": {"jobs": 3, "coloured": 2, "done_before": 0, "failed": 1, "frames": 9600, "fps": 11.8},
     "jobs": [{"source": "reels/r01.mkv", "output": "out/r01.mkv", "status": "coloured", "frames": 4800,
               "seconds": 401.2, "shots": [{"shot": 0, "confidence": 0.81, "colourfulness": 31.2, ...}]},
              {"source": "reels/r03.mkv", "output": "out/r03.mkv", "status": "failed",
               "error": "reels/r03.mkv: no frame could be decoded"}, ...]}
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from vidcolor.batch.plan import Job
from vidcolor.console import log
from vidcolor.errors import InputError, ModelError, VidcolorError

REPORT = "report.json"
PART_MINUTES = 10.0  # on a cluster, films longer than this are coloured in parts of about this length
STATUSES = ("coloured", "done_before", "failed")


def run_job(job: Job, options: dict, part: tuple[int, int | None] | None = None) -> dict:
    """Colour one job with the batch's ``options`` under its own (``part``: only that range
    of its film's segments, see ``join_job``); its report entry (a failure is an entry too:
    only an interruption stops the batch)."""
    from vidcolor import api
    from vidcolor.io.segments import MANIFEST, Part, work_folder

    entry = {"source": str(job.source), "output": str(job.output)} | ({"part": list(part)} if part else {})
    film = job.film
    if job.output.exists():
        return {**entry, "status": "done_before", **_outcome(job, film)}
    settings = {**options, **job.options}
    manifest = work_folder(job.output) / (Part(*part).manifest if part else MANIFEST)

    def colour():
        resume = film and manifest.is_file()
        try:
            api.colorize(job.source, job.output, resume=resume, report=film, part=part, **settings)
        except InputError as e:
            if not resume or "unfinished run" not in str(e):
                raise
            log.warning(f"{job.name}: {e}; starting it again")
            api.colorize(job.source, job.output, report=film, part=part, **settings)

    return _attempt(colour, entry, lambda: {} if part else _outcome(job, film))


def join_job(job: Job, options: dict) -> dict:
    """Write a film coloured in parts (``run_job`` with each range of its segments)."""
    from vidcolor import api

    settings = {**options, **job.options}
    keep = {k: settings[k] for k in ("codec", "crf", "start", "end") if k in settings}
    entry = {"source": str(job.source), "output": str(job.output)}
    if job.output.exists():
        return {**entry, "status": "done_before", **_outcome(job, True)}
    return _attempt(lambda: api.join_parts(job.source, job.output, report=True, **keep), entry,
                    lambda: _outcome(job, True))


def _attempt(work, entry: dict, outcome) -> dict:
    """``entry`` with the status of ``work()``, its seconds and ``outcome()`` or its error."""
    started = time.perf_counter()
    try:
        work()
    except VidcolorError as e:
        return {**entry, "status": "failed", "error": str(e), "seconds": round(time.perf_counter() - started, 3)}
    except (OSError, ValueError, RuntimeError) as e:  # a problem of this job's own files or a bug: recorded
        return {**entry, "status": "failed", "error": f"{type(e).__name__}: {e}",
                "seconds": round(time.perf_counter() - started, 3)}
    return {**entry, "status": "coloured", "seconds": round(time.perf_counter() - started, 3), **outcome()}


def _outcome(job: Job, film: bool) -> dict:
    """Frames and shots of a finished job, from its film's shot report when there is one."""
    from vidcolor.film.report import report_path

    if not film:
        return {"frames": 1}
    try:
        shots = json.loads(report_path(job.output).read_text())
    except (OSError, ValueError):
        return {}
    return {"frames": shots.get("frames"), "shots": shots.get("shots", [])}


class BatchReport:
    """The jobs' entries in plan order, the summary, and ``report.json`` written as each ends."""

    def __init__(self, source: Path, outdir: Path, jobs: list[Job], workers: int):
        self.source, self.outdir, self.workers = source, outdir, workers
        self.entries: list[dict | None] = [None] * len(jobs)
        self.started = time.perf_counter()

    def add(self, index: int, entry: dict) -> None:
        self.entries[index] = entry
        self.write()

    @property
    def frames(self) -> int:
        return sum(e.get("frames") or 0 for e in self.entries if e and e["status"] == "coloured")

    def summary(self) -> dict:
        ended = [e for e in self.entries if e is not None]
        seconds = time.perf_counter() - self.started
        counts = {status: sum(e["status"] == status for e in ended) for status in STATUSES}
        return {"jobs": len(self.entries), **counts, "frames": self.frames,
                "fps": round(self.frames / seconds, 3) if seconds > 0 else None,
                "failed_names": [Path(e["source"]).name for e in ended if e["status"] == "failed"]}

    def write(self) -> None:
        from vidcolor.io.atomic import atomic_output

        data = {"source": str(self.source), "outdir": str(self.outdir),
                "seconds": round(time.perf_counter() - self.started, 3), "workers": self.workers,
                "summary": self.summary(), "jobs": [e for e in self.entries if e is not None]}
        with atomic_output(self.outdir / REPORT) as partial:
            partial.write_text(json.dumps(data, indent=1) + "\n")


def run_batch(source: Path, outdir: Path, options: dict, *, ray: str | None = None, workers: int | None = None,
              gpus_per_worker: float = 0.0, retries: int = 3, part_minutes: float | None = PART_MINUTES) -> dict:
    """Colour every job of ``source`` (a folder or a manifest: ``vidcolor.batch.plan``) into
    ``outdir``, here one after the other, or on the Ray cluster at ``ray`` (``"local"``: one
    started on this machine) with ``workers`` workers, films longer than ``part_minutes``
    in parts that workers colour side by side (None or 0: whole films); returns the summary."""
    from vidcolor import console
    from vidcolor.batch.plan import plan

    source, outdir = Path(source), Path(outdir)
    if workers is not None and workers < 1:
        raise InputError("`workers` must be at least 1")
    if part_minutes is not None and part_minutes < 0:
        raise InputError("`part_minutes` must not be negative")
    if ray is None and workers not in (None, 1):
        raise InputError("`workers` is for a Ray cluster: add `ray=local` or `ray=ADDRESS`")
    if ray is not None:
        from vidcolor.batch.cluster import check

        check(gpus_per_worker, retries)
    if options.get("model") is not None:  # the batch's own model, checked once rather than failing every job
        from vidcolor import colorizers

        if options["model"] not in colorizers.names():
            raise ModelError(f"unknown model {options['model']!r}; available: {', '.join(colorizers.names())}")
    jobs = plan(source, outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    report = BatchReport(source, outdir, jobs, workers or 1)
    bar = console.progress(len(jobs), "batch", unit="jobs")

    def ended(index: int, entry: dict) -> None:
        report.add(index, entry)
        if entry["status"] == "failed":
            log.warning(f"{jobs[index].name}: failed: {entry['error']}")
        seconds = time.perf_counter() - report.started
        bar.set_postfix_str(f"{report.frames} frames, {report.frames / max(seconds, 1e-9):.1f} fps", refresh=False)
        bar.update(1)

    try:
        if ray is None:
            from vidcolor.models.kept import keep_loaded

            keep_loaded()
            try:
                for index, job in enumerate(jobs):
                    ended(index, run_job(job, options))
            finally:
                keep_loaded(False)
        else:
            from vidcolor.batch.cluster import run_on_ray

            run_on_ray(jobs, options, ray, workers, gpus_per_worker, retries,
                       part_minutes * 60 if part_minutes else None, ended)
    finally:
        bar.close()
    summary = report.summary()
    log.info(f"batch: {summary['coloured']} coloured, {summary['done_before']} done before, "
             f"{summary['failed']} failed of {summary['jobs']}; {summary['frames']} frames at {summary['fps']} fps; "
             f"report: {outdir / REPORT}")
    return summary
