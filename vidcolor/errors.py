"""Domain errors. Each carries a one-line message that says what went wrong and, where
there is one, what to do about it. The CLI prints the message and exits non-zero.

A message names the caller's parameters between backticks, with a value where it matters:
"`batch_size` must be at least 1", "`device=cuda`: no CUDA GPU". From Python the message
reads "batch_size must be at least 1", "device='cuda': no CUDA GPU"; the command line shows
the same parameters as its flags ("--batch-size", "--device cuda"), see ``as_flags``.
"""

from __future__ import annotations

import re

_PARAMETER = re.compile(r"`([a-z][a-z0-9_]*)(?:=([^`]*))?`")


def as_parameters(message: str) -> str:
    """The message with its parameters as Python writes them: ``name`` or ``name='value'``."""

    def spell(m: re.Match) -> str:
        name, value = m.group(1), m.group(2)
        if value is None:
            return name
        return f"{name}={value}" if value in ("True", "False", "None") or _is_number(value) else f"{name}={value!r}"

    return _PARAMETER.sub(spell, message)


def as_flags(message: str) -> str:
    """The message with its parameters as command-line flags: ``--name`` or ``--name value``
    (``name=True`` is the bare flag)."""

    def spell(m: re.Match) -> str:
        flag = "--" + m.group(1).replace("_", "-")
        value = m.group(2)
        return flag if value in (None, "True") else f"{flag} {value}"

    return _PARAMETER.sub(spell, message)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class VidcolorError(Exception):
    """Base of every error vidcolor reports to the user."""

    exit_code = 1

    def __str__(self) -> str:
        return as_parameters(super().__str__())

    def for_command_line(self) -> str:
        return as_flags(super().__str__())


class InputError(VidcolorError):
    """The input (film, image, folder) is missing, unreadable or not usable media."""

    exit_code = 2


class ReferenceImageError(VidcolorError):
    """A reference image or reference mapping cannot be used."""

    exit_code = 2


class OutputError(VidcolorError):
    """The output cannot be written (exists, not writable, disk full)."""

    exit_code = 3


class ModelError(VidcolorError):
    """Unknown model name or a model that cannot run with the given options."""

    exit_code = 2


class DeviceError(VidcolorError):
    """The requested compute device is not available."""

    exit_code = 2


class BatchError(VidcolorError):
    """Some jobs of a batch failed (the others were coloured; each failure is in its report)."""

    exit_code = 1


class CorruptMediaError(InputError):
    """Too many undecodable frames in a row."""
