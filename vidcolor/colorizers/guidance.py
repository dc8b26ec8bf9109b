"""What a user tells the networks, read and checked once: decoding and temperature
(eccv16), local hints, a global hint image and saturation (siggraph17, and the global hint
for larsson's histogram transfer), samples and seed (pixcolor); the post-processing of
``devc``. Each automatic network declares the options it takes (``OPTIONS``); an option is
refused, with the models that take it, when the chosen model would ignore it."""

from __future__ import annotations

from pathlib import Path

import torch

from vidcolor.ops import quantize
from vidcolor.models.automatic import AutoOptions, network_class, takers
from vidcolor.models.automatic import names as automatic_names
from vidcolor.errors import InputError


def picture_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image or of a film's frames."""
    from vidcolor.io.images import is_image_path, read_image
    from vidcolor.io.video_reader import open_video

    if is_image_path(path):
        image = read_image(path)
        return image.shape[1], image.shape[0]
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height
    finally:
        container.close()


def _refuse_unused(model: str, given: dict) -> None:
    for option, value in given.items():
        if value is not None and option not in network_class(model).OPTIONS:
            models = " or ".join(f"`model={m}`" for m in takers(option))
            raise InputError(f"`{option}` is for {models}, not {model}")


def build(model: str, source: Path, decode: str | None = None, temperature: float | None = None,
          hints: Path | None = None, global_hint: Path | None = None, saturation: float | None = None,
          samples: int | None = None, seed: int | None = None, several_pictures: bool = True,
          post: str | None = None):
    """The ``AutoOptions`` for ``model`` colouring ``source`` (an image, a film or a folder);
    for ``devc`` its ``DEVCPost`` (from ``post``); None for the other models that take a
    reference (which take none of these options). ``several_pictures``: the output may be
    several pictures (``--samples``)."""
    given = {"decode": decode, "temperature": temperature, "hints": hints, "global_hint": global_hint,
             "saturation": saturation, "samples": samples, "seed": seed}
    if post is not None and model != "devc":
        raise InputError(f"`post` is for `model=devc`, not {model}")
    if model not in automatic_names():
        for option, value in given.items():
            if value is not None:
                raise InputError(f"`{option}` is for the automatic networks (`auto` with `model`), "
                                 f"not {model}")
        if model == "devc" and post is not None:
            from vidcolor.colorizers.devc import DEVCPost

            return DEVCPost.named(post)
        return None
    _refuse_unused(model, given)
    if samples is not None and samples > 1 and not several_pictures:
        raise InputError("`samples` writes several pictures: give a photo or a folder of photos")
    options = AutoOptions()
    if decode is not None:
        if decode not in quantize.DECODES:
            raise InputError(f"`decode={decode}`: choose {', '.join(quantize.DECODES)}")
        options.decode = decode
    if temperature is not None:
        if not 0 < temperature <= 1:
            raise InputError("`temperature` must be in (0, 1]; 0.38 is the paper's")
        options.temperature = temperature
    if hints is not None:
        from vidcolor.models.siggraph17 import parse_hints

        if source.is_dir():
            raise InputError("`hints` belong to one picture or film, not a folder")
        options.hints = parse_hints(hints, *picture_size(source))
    if global_hint is not None:
        from vidcolor.io.images import read_rgb

        rgb = read_rgb(global_hint)
        options.global_hint = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    if saturation is not None:
        if not 0 <= saturation <= 1:
            raise InputError("`saturation` must be in [0, 1]")
        options.saturation = saturation
    if seed is not None:
        options.seed = seed
    if samples is not None and samples < 1:
        raise InputError("`samples` must be at least 1")
    return options
