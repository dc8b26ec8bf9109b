"""The automatic networks as colorizers: ``--auto --model eccv16|siggraph17|larsson|pixcolor``.

Each registered automatic network (``vidcolor.models.automatic``) becomes a colorizer of the same
name that needs no reference. Its weights come from ``--weights`` or the installed file
``NAME.safetensors`` (trained with ``vidcolor train NAME``, or the authors' release
imported with ``vidcolor weights import NAME FILE``). On CUDA it runs channels-last under
bf16 autocast. The user's steering (decoding, hints, samples) arrives as ``AutoOptions``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vidcolor.models import automatic, official
from vidcolor.colorizers.base import Colorizer, register
from vidcolor.errors import ModelError
from vidcolor.models.weights import default_weights


class AutomaticColorizer(Colorizer):
    needs_reference = False
    takes_weights = True

    def __init__(self, device="cpu", weights: Path | str | None = None, options: automatic.AutoOptions | None = None):
        super().__init__(device)
        path = Path(weights) if weights else default_weights(self.name)
        if path is None:
            how = [f"import the authors' release with 'vidcolor weights import {self.name} FILE'"] \
                if self.name in official.importable() else []
            if automatic.network_class(self.name).TRAINABLE:
                how.append(f"train it with 'vidcolor train {self.name}' and pass `weights=FILE`")
            raise ModelError(f"model {self.name!r} has no installed weights; {', or '.join(how)}")
        self.net = automatic.load(path, self.name, self.device)
        if self.device.type == "cuda":
            self.net = self.net.to(memory_format=torch.channels_last)
        self.options = options or automatic.AutoOptions()
        self.can_sample = hasattr(self.net, "colorize_samples")

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def prepare(self, reference: torch.Tensor | None) -> None:
        return None

    def colorize(self, lightness: torch.Tensor, prepared=None) -> torch.Tensor:
        with self._autocast():
            return self.net.colorize(lightness.to(self.device), self.options).float()

    def colorize_samples(self, lightness: torch.Tensor, count: int) -> torch.Tensor:
        """``count`` different colorizations ``(count, B, 2, h, w)`` (networks that sample)."""
        if not self.can_sample:
            samplers = [n for n in automatic.names() if hasattr(automatic.network_class(n), "colorize_samples")]
            raise ModelError(f"model {self.name!r} gives one colorization; `samples` needs {' or '.join(f'`model={s}`' for s in samplers)}")
        with self._autocast():
            return self.net.colorize_samples(lightness.to(self.device), self.options, count).float()


for _name in automatic.names():
    register(_name)(type(f"Automatic_{_name}", (AutomaticColorizer,), {"RANK": automatic.network_class(_name).RANK}))
