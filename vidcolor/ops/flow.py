"""Dense optical flow between grey frames (OpenCV DIS, medium preset), backward warping,
and the occlusion and motion-boundary mask of the temporal-consistency protocol (Lai et al.
2018, after Ruder et al. 2016). Used by the temporal smoothing and by the warp error."""

from __future__ import annotations

import functools

import cv2
import numpy as np

# Occlusion test constants of the protocol (Lai et al. 2018, after Ruder et al. 2016).
OCCLUSION_RELATIVE = 0.01
OCCLUSION_ABSOLUTE = 0.5
BOUNDARY_RELATIVE = 0.01
BOUNDARY_ABSOLUTE = 0.002


@functools.lru_cache(maxsize=1)
def _dis() -> cv2.DISOpticalFlow:
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def flow_grey(rgb: np.ndarray) -> np.ndarray:
    """The uint8 grey image the flow is computed on (OpenCV's RGB -> grey)."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return rgb if rgb.dtype == np.uint8 else np.clip(rgb, 0, 255).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def optical_flow(prev_grey: np.ndarray, next_grey: np.ndarray) -> np.ndarray:
    """Dense flow ``(H, W, 2)`` float32 (x, y) from ``prev`` to ``next`` with OpenCV DIS
    (medium preset): ``prev(p) ~ next(p + flow(p))``. Inputs: uint8 grey (or RGB, made grey)."""
    return _dis().calc(flow_grey(prev_grey), flow_grey(next_grey), None)


def pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def backward_warp(image: np.ndarray, flow: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """``out(p) = image(p + flow(p))``, bilinear, with ``cv2.remap``."""
    h, w = flow.shape[:2]
    xs, ys = pixel_grid(h, w)
    return cv2.remap(
        np.ascontiguousarray(image), xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=border
    )


def occlusion_mask(flow_fw: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
    """True where a pixel of frame t is occluded or on a motion boundary (M_t = 0).

    ``flow_fw``: t -> t+1, ``flow_bw``: t+1 -> t, both ``(H, W, 2)``. The backward flow is
    warped to t with the forward flow (zero outside the frame, so pixels that leave the
    frame fail the consistency test)."""
    fw = flow_fw.astype(np.float32)
    bw = backward_warp(flow_bw.astype(np.float32), fw, border=cv2.BORDER_CONSTANT)
    fb = fw + bw
    inconsistent = (fb**2).sum(-1) > OCCLUSION_RELATIVE * ((fw**2).sum(-1) + (bw**2).sum(-1)) + OCCLUSION_ABSOLUTE
    grad = np.zeros(fw.shape[:2], np.float32)
    for c in range(2):
        dx = np.zeros(fw.shape[:2], np.float32)
        dy = np.zeros(fw.shape[:2], np.float32)
        dx[:, :-1] = fw[:, 1:, c] - fw[:, :-1, c]
        dy[:-1, :] = fw[1:, :, c] - fw[:-1, :, c]
        grad += dx**2 + dy**2
    boundary = grad > BOUNDARY_RELATIVE * (fw**2).sum(-1) + BOUNDARY_ABSOLUTE
    return inconsistent | boundary
