"""Domain errors. Each carries a one-line message that says what went wrong and, where
there is one, what to do about it. The CLI prints the message and exits non-zero."""


class VidcolorError(Exception):
    """Base of every error vidcolor reports to the user."""

    exit_code = 1


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


class CorruptMediaError(InputError):
    """Too many undecodable frames in a row."""
