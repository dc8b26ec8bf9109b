"""vidcolor: colour for black-and-white film and photographs.

``colorize`` does what the ``vidcolor`` command does (films, photos, folders; a range of a
film's segments, which ``join_parts`` makes one film of); ``create``
gives a colorizer of numpy frames; ``list_models`` names every model and whether its
weights are installed. Errors are the exceptions below, each with a one-line message.
"""

from vidcolor.api import FrameColorizer, ModelInfo, colorize, create, join_parts, list_models
from vidcolor.errors import (CorruptMediaError, DeviceError, InputError, ModelError, OutputError, ReferenceImageError,
                             VidcolorError)

__version__ = "0.1.0"

__all__ = [
    "colorize", "join_parts", "create", "list_models", "FrameColorizer", "ModelInfo", "VidcolorError", "InputError",
    "ReferenceImageError", "OutputError", "ModelError", "DeviceError", "CorruptMediaError",
]
