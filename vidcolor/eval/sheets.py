"""The contact sheet of ``vidcolor eval --sheet``: per item, its grey input, reference,
output and original, side by side."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vidcolor.io.images import write_image

SHEET_ROW_HEIGHT = 144
SHEET_LABEL_WIDTH = 96
SHEET_TITLE_HEIGHT = 20
SHEET_ROWS = ("grey", "reference", "output", "original")


def _fit(rgb: np.ndarray, width: int | None = None) -> np.ndarray:
    """Scale to the sheet's row height (or into ``width`` x row height, padded white)."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    h, w = rgb.shape[:2]
    scale = SHEET_ROW_HEIGHT / h
    if width is not None:
        scale = min(scale, width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    tile = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if width is None:
        return tile
    canvas = np.full((SHEET_ROW_HEIGHT, width, 3), 255, np.uint8)
    y, x = (SHEET_ROW_HEIGHT - tile.shape[0]) // 2, (width - tile.shape[1]) // 2
    canvas[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return canvas


def write_sheet(path: Path, runs: list) -> None:
    """A PNG contact sheet: one column per item (its name on top), rows grey, reference,
    output, original."""
    if not runs:
        return
    columns = []
    for run in runs:
        original = _fit(run.sheet["original"])
        width = original.shape[1]
        tiles = []
        for row in SHEET_ROWS:
            image = run.sheet[row]
            blank = np.full((SHEET_ROW_HEIGHT, width, 3), 255, np.uint8)
            tiles.append(_fit(image, width) if image is not None else blank)
        title = np.full((SHEET_TITLE_HEIGHT, width, 3), 255, np.uint8)
        name = run.item.name if len(run.item.name) * 7 <= width else run.item.name[: max(1, width // 7 - 2)] + ".."
        cv2.putText(title, name, (2, SHEET_TITLE_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.insert(0, title)
        column = np.concatenate([np.pad(t, ((0, 4), (0, 4), (0, 0)), constant_values=255) for t in tiles], axis=0)
        columns.append(column)
    labels = np.full((columns[0].shape[0], SHEET_LABEL_WIDTH, 3), 255, np.uint8)
    for r, name in enumerate(SHEET_ROWS):
        y = SHEET_TITLE_HEIGHT + 4 + r * (SHEET_ROW_HEIGHT + 4) + SHEET_ROW_HEIGHT // 2 + 5
        cv2.putText(labels, name, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    write_image(Path(path), np.concatenate([labels, *columns], axis=1))
