"""The command line's help texts name models without importing them (``--help`` answers
without PyTorch), so these tests hold them to the registries: every model an option's help
names takes that option, and every one that takes it is named."""

from __future__ import annotations

import re

import typer

from vidcolor.cli import app
from vidcolor.models import automatic, official
from vidcolor.train.loop import models as trainable

MODEL_NAME = re.compile(r"\b(?:exemplar|backbone|transfer|devc|" + "|".join(automatic.names()) + r")\b")


def _help(command: str, parameter: str) -> str:
    cmd = typer.main.get_command(app).commands[command]
    return next(p for p in cmd.params if p.name == parameter).help


def _named(text: str) -> set[str]:
    return set(MODEL_NAME.findall(text))


def test_each_option_of_the_automatic_networks_names_exactly_the_models_that_take_it():
    options = {o for name in automatic.names() for o in automatic.network_class(name).OPTIONS}
    assert options >= {"decode", "temperature", "hints", "global_hint", "saturation", "samples", "seed"}
    for option in options:
        text = _help("colorize", option)
        assert _named(text.split(":")[0]) == set(automatic.takers(option)), (option, text)


def test_train_and_weights_import_name_what_they_accept():
    assert _named(_help("train", "model")) == set(trainable())
    weights = typer.main.get_command(app).commands["weights"]
    name = next(p for p in weights.commands["import"].params if p.name == "name")
    assert _named(name.help) == set(official.importable())
