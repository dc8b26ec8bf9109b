"""Training data: colour images and video frames, and exemplar pairs made from them.

Media are read once into memory at a reduced size (short side ``load_size``): photos whole,
videos as up to ``frames_per_video`` evenly spaced frames. A folder named ``NAME.frames``
holding pictures is one clip, its frames in name order (``train/compact_data.py --frames``
writes videos so, for machines without PyAV). Grey and near-grey pictures (no
|ab| above 5, as in Zhang et al.'s recipe) are skipped. Every batch is drawn from a random
generator seeded by ``(seed, step)``, so a resumed run sees exactly the batches it would have.

Exemplar pairs (He et al. 2018; Zhang et al. 2019), target and reference:
- two frames of one video clip, a few frames apart;
- a picture and a copy of itself under a smooth random deformation, crop, flip and
  brightness change;
- a picture and a different one of related content: its nearest neighbour in the
  training set by the backbone's pooled deep features (``related_items``), as the
  recommendation of section 4 would choose it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.ops import color
from vidcolor import console
from vidcolor.errors import InputError
from vidcolor.io.media import Item, find_items, frame_count, video_frames
from vidcolor.io.images import IMAGE_SUFFIXES, read_rgb

GREY_AB = 5.0
FRAMES_SUFFIX = ".frames"  # a folder of a clip's frames


@dataclass
class Clip:
    name: str
    frames: list[torch.Tensor]  # sRGB (3, H, W) in [0, 1]


def _shrink(rgb: np.ndarray, size: int) -> torch.Tensor:
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    h, w = image.shape[-2:]
    scale = size / min(h, w)
    if scale < 1:
        image = F.interpolate(image, size=(max(size, round(h * scale)), max(size, round(w * scale))), mode="area")
    return image[0]


def is_colourful(image: torch.Tensor) -> bool:
    return bool(color.rgb_to_lab(image[None])[:, 1:].abs().amax() > GREY_AB)


def load_media(folders: list[Path], load_size: int = 160, frames_per_video: int = 48) -> list[Clip]:
    """Every photo (a clip of one frame) and video under ``folders``, shrunk; grey skipped."""
    clips: list[Clip] = []
    skipped = 0
    for folder in folders:
        for item in _clips_of(find_items(folder)):
            try:
                if item.kind == "frames":
                    paths = sorted(p for p in item.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                    step = max(1, len(paths) // frames_per_video)
                    frames = [_shrink(read_rgb(p), load_size) for p in paths[::step][:frames_per_video]]
                elif item.kind == "photo":
                    frames = [_shrink(read_rgb(item.path), load_size)]
                else:
                    step = max(1, frame_count(item.path, None) // frames_per_video)
                    frames = [
                        _shrink(rgb, load_size) for k, rgb in enumerate(video_frames(item.path)) if k % step == 0
                    ][:frames_per_video]
            except Exception as e:  # an unreadable file is skipped, not fatal
                console.log.warning(f"{item.path}: skipped ({e})")
                continue
            frames = [f for f in frames if is_colourful(f)]
            if frames:
                clips.append(Clip(item.name, frames))
            else:
                skipped += 1
    if skipped:
        console.log.info(f"skipped {skipped} grey or near-grey items")
    if not clips:
        raise InputError(f"{', '.join(map(str, folders))}: no colour photos or videos to train on")
    return clips


def _clips_of(items: list[Item]) -> list[Item]:
    """The items, with the pictures of each ``NAME.frames`` folder as one item of kind ``frames``."""
    out, seen = [], set()
    for item in items:
        folder = item.path.parent
        if item.kind == "photo" and folder.suffix == FRAMES_SUFFIX:
            if folder not in seen:
                seen.add(folder)
                out.append(Item(folder, str(Path(item.name).parent), "frames"))
        else:
            out.append(item)
    return out


def random_crop(image: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    _, h, w = image.shape
    if min(h, w) < size:
        image = F.interpolate(image[None], scale_factor=size / min(h, w) + 1e-3, mode="bilinear", align_corners=False)[0]
        _, h, w = image.shape
    y = int(torch.randint(0, h - size + 1, (1,), generator=g))
    x = int(torch.randint(0, w - size + 1, (1,), generator=g))
    return image[:, y : y + size, x : x + size]


def smooth_field(h: int, w: int, amplitude: float, g: torch.Generator) -> torch.Tensor:
    """A random smooth displacement (up to ``amplitude`` pixels, plus a shift) as a
    normalised sampling field ``(1, h, w, 2)``."""
    from vidcolor.models.exemplar.correspondence import pixel_grid

    disp = F.interpolate(torch.randn(1, 2, 5, 5, generator=g), size=(h, w), mode="bicubic", align_corners=False)
    disp = disp / disp.abs().amax().clamp_min(1e-6) * amplitude * float(torch.rand(1, generator=g))
    disp = disp + ((torch.rand(2, generator=g) - 0.5) * amplitude).view(1, 2, 1, 1)
    scale = torch.tensor([2.0 / w, 2.0 / h]).view(1, 2, 1, 1)
    return pixel_grid(1, h, w, "cpu") + (disp * scale).permute(0, 2, 3, 1)


def deformed_copy(image: torch.Tensor, amplitude: float, g: torch.Generator) -> torch.Tensor:
    """The picture under a smooth deformation, maybe mirrored, brightness scaled by 0.8-1.2."""
    _, h, w = image.shape
    field = smooth_field(h, w, amplitude, g)
    out = F.grid_sample(image[None], field, mode="bilinear", padding_mode="reflection", align_corners=False)[0]
    if float(torch.rand(1, generator=g)) < 0.5:
        out = out.flip(-1)
    return (out * (0.8 + 0.4 * float(torch.rand(1, generator=g)))).clamp(0, 1)


@torch.no_grad()
def related_items(clips: list[Clip], backbone, device: torch.device | str = "cpu") -> list[int]:
    """For each clip, the index of the other clip whose first frame is most alike in
    content: the cosine of the average- and max-pooled deepest features of the luminance."""
    from vidcolor.film.recommend import global_descriptor

    if len(clips) < 2:
        return [0] * len(clips)
    descriptors = []
    for clip in clips:
        grey = color.lightness_to_grey(color.rgb_to_lab(clip.frames[0][None].to(device))[:, :1])
        descriptors.append(global_descriptor(backbone(grey)[-1][0].float()))
    d = torch.stack(descriptors)
    sim = d @ d.T
    sim.fill_diagonal_(-2.0)
    return sim.argmax(1).tolist()


def unrelated_count(batch: int, share: float) -> int:
    """How many pairs at the end of a batch of ``batch`` have an unrelated reference."""
    return min(batch, round(batch * share)) if share > 0 else 0


class ExemplarPairs:
    """Batches of (target, reference) sRGB pairs ``(B, 3, size, size)`` for step ``k``.
    ``related`` (from ``related_items``) enables pairs of related pictures, a
    ``related_share`` of them. With ``unrelated_share``, the last ``unrelated_count`` pairs
    of every batch have an unrelated reference: a picture of another clip, neither the
    target's own nor its related one (where the colours of the reference are wrong for
    the target, and copying them is to be unlearnt)."""

    def __init__(self, clips: list[Clip], size: int = 128, batch: int = 8, seed: int = 0,
                 video_share: float = 0.5, max_gap: int = 8, amplitude: float = 12.0,
                 related: list[int] | None = None, related_share: float = 0.2, unrelated_share: float = 0.0):
        self.clips, self.size, self.batch, self.seed = clips, size, batch, seed
        self.videos = [c for c in clips if len(c.frames) > 1]
        self.video_share = video_share if self.videos else 0.0
        self.max_gap, self.amplitude = max_gap, amplitude
        self.related, self.related_share = related, related_share if related else 0.0
        self.unrelated = unrelated_count(batch, unrelated_share) if len(clips) > 2 else 0

    def unrelated_pair(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        k = int(torch.randint(0, len(self.clips), (1,), generator=g))
        excluded = {k, self.related[k]} if self.related else {k}
        others = [j for j in range(len(self.clips)) if j not in excluded]
        j = others[int(torch.randint(0, len(others), (1,), generator=g))]
        pick = lambda clip: clip.frames[int(torch.randint(0, len(clip.frames), (1,), generator=g))]  # noqa: E731
        return random_crop(pick(self.clips[k]), self.size, g), random_crop(pick(self.clips[j]), self.size, g)

    def pair(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if float(torch.rand(1, generator=g)) < self.related_share:
            k = int(torch.randint(0, len(self.clips), (1,), generator=g))
            target = random_crop(self.clips[k].frames[0], self.size, g)
            reference = random_crop(self.clips[self.related[k]].frames[0], self.size, g)
            return target, reference
        if float(torch.rand(1, generator=g)) < self.video_share:
            clip = self.videos[int(torch.randint(0, len(self.videos), (1,), generator=g))]
            i = int(torch.randint(0, len(clip.frames), (1,), generator=g))
            j = min(len(clip.frames) - 1, i + int(torch.randint(1, self.max_gap + 1, (1,), generator=g)))
            both = torch.cat((clip.frames[i], clip.frames[j]), 0)  # one crop window for both
            crop = random_crop(both, self.size, g)
            target, reference = crop[:3], crop[3:]
        else:
            clip = self.clips[int(torch.randint(0, len(self.clips), (1,), generator=g))]
            target = random_crop(clip.frames[int(torch.randint(0, len(clip.frames), (1,), generator=g))], self.size, g)
            reference = deformed_copy(target, self.amplitude, g)
        if float(torch.rand(1, generator=g)) < 0.5:  # swap roles, as the paper does
            target, reference = reference, target
        return target, reference

    def batch_at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        pairs = [self.pair(g) for _ in range(self.batch - self.unrelated)]
        pairs += [self.unrelated_pair(g) for _ in range(self.unrelated)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
