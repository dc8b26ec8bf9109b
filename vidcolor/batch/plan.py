"""What a batch colours: every film and picture of a folder, or the rows of a manifest.

A folder gives one job per film and picture under it (recursed; hidden files and folders
are left out), each written to the same relative path under the output folder. A manifest
is a CSV file with a header, or a JSON list of objects (or ``{"jobs": [...]}``); each row
names its ``source`` and may name its ``output`` (relative to the output folder) and any
option of ``vidcolor.colorize`` by its Python name: ``reference`` (a picture, a folder of
pictures or of exported keyframes, or a mapping file), ``model``, ``auto``, ``work_res``,
``start``... An empty CSV cell leaves the option to the batch's own. Relative paths in a
manifest are read from the manifest's folder.

    source,reference,model,start,end
    reels/r01.mkv,refs/r01/,exemplar,,
    reels/r02.mkv,,,00:01:00,00:11:00
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from vidcolor.errors import InputError

PATHS = ("reference", "weights", "gallery", "hints", "global_hint")
FLAGS = ("auto", "auto_reference")
INTEGERS = ("work_res", "batch_size", "crf", "seed")
NUMBERS = ("shot_threshold", "temperature", "saturation", "key_every")
TEXTS = ("model", "device", "temporal", "codec", "start", "end", "decode", "post", "auto_mode")
OPTIONS = PATHS + FLAGS + INTEGERS + NUMBERS + TEXTS
TRUE, FALSE = ("1", "true", "yes", "y"), ("0", "false", "no", "n")


@dataclass
class Job:
    """One film or picture of a batch: its source, its output, and the options that are its own."""

    source: Path
    output: Path
    options: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def film(self) -> bool:
        """Whether the source is a film (else a picture, or a folder of pictures)."""
        from vidcolor.io.images import is_image_path

        return not is_image_path(self.source) and not self.source.is_dir()


def plan(source: Path, outdir: Path) -> list[Job]:
    """The jobs of a folder or a manifest file (see the module's description), outputs under
    ``outdir``; refuses two jobs writing one output and an output that is its own source."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source}: no such folder or manifest")
    if source.is_dir() and Path(outdir).resolve() == source.resolve():
        raise InputError(f"{outdir}: the output folder is the input folder; choose another output folder")
    jobs = from_folder(source, outdir) if source.is_dir() else from_manifest(source, outdir)
    if not jobs:
        raise InputError(f"{source}: no film or picture to colour")
    seen: dict[Path, Path] = {}
    for job in jobs:
        target = job.output.resolve()
        if target in seen:
            raise InputError(f"{seen[target]} and {job.source} would both be written to {job.output}")
        if target == job.source.resolve():
            raise InputError(f"{job.source}: its output would replace it; choose another output folder")
        seen[target] = job.source
    return jobs


def from_folder(folder: Path, outdir: Path) -> list[Job]:
    from vidcolor.io.images import IMAGE_SUFFIXES
    from vidcolor.io.media import VIDEO_SUFFIXES

    jobs = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.suffix.lower() not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
            continue
        if outdir.resolve() in path.resolve().parents:
            continue  # an output folder inside the input folder: earlier outputs are not sources
        jobs.append(Job(path, output_path(outdir / relative)))
    return jobs


def output_path(path: Path) -> Path:
    """A picture in a format that is read but not written becomes a PNG."""
    from vidcolor.io.images import WRITE_SUFFIXES, is_image_path

    return path.with_suffix(".png") if is_image_path(path) and path.suffix.lower() not in WRITE_SUFFIXES else path


def from_manifest(path: Path, outdir: Path) -> list[Job]:
    rows = _read_rows(path)
    jobs = []
    for number, row in enumerate(rows, 1):
        where = f"{path}, row {number}"
        if not isinstance(row, dict):
            raise InputError(f"{where}: each row must be an object of options")
        row = {str(k).strip(): v for k, v in row.items() if k is not None and v not in (None, "")}
        if "source" not in row:
            raise InputError(f"{where}: no source")
        unknown = sorted(set(row) - set(OPTIONS) - {"source", "output"})
        if unknown:
            raise InputError(f"{where}: unknown option {unknown[0]!r}; known: source, output, {', '.join(OPTIONS)}")
        source = _path(path.parent, row.pop("source"))
        output = outdir / row.pop("output") if "output" in row else output_path(outdir / source.name)
        jobs.append(Job(source, output, {k: _value(k, v, where, path.parent) for k, v in row.items()}))
    return jobs


def _read_rows(path: Path) -> list:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot be read as a manifest ({e})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise InputError(f"{path}: not valid JSON ({e})") from None
        rows = data.get("jobs") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise InputError(f"{path}: a JSON manifest is a list of objects, or {{\"jobs\": [...]}}")
        return rows
    if path.suffix.lower() != ".csv":
        raise InputError(f"{path}: a manifest is a .csv or .json file (or give a folder)")
    return list(csv.DictReader(text.splitlines()))


def _path(base: Path, value) -> Path:
    path = Path(str(value).strip()).expanduser()
    return path if path.is_absolute() else base / path


def _value(name: str, value, where: str, base: Path):
    """A manifest's value as the option takes it (a CSV's are text)."""
    if name in PATHS:
        return _path(base, value)
    text = str(value).strip()
    try:
        if name in FLAGS:
            if isinstance(value, bool):
                return value
            if text.lower() not in TRUE + FALSE:
                raise ValueError
            return text.lower() in TRUE
        if name in INTEGERS:
            return int(text)
        if name in NUMBERS:
            return float(text)
    except ValueError:
        raise InputError(f"{where}: {name} {text!r} is not a {'yes/no' if name in FLAGS else 'number'}") from None
    return text


def defaults(**options) -> dict:
    """The batch's own options: those that were given (None: the option's default)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InputError(f"unknown option {unknown[0]!r}")
    return {k: v for k, v in options.items() if v not in (None, [], ())}
