"""Make the shipped example: a short black-and-white film of two shots with sound, and the
colour reference of each shot. Everything is drawn here (procedural scenes, a synthetic
tune), so the example is ours to ship.

    python examples/make_example.py            # writes examples/countryside.mp4, examples/references/*.png
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT, FPS = 480, 272, 24
SHOT_FRAMES = 48
SAMPLE_RATE = 44100


def _noise(seed: int, shape: tuple[int, int], scale: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((shape[0] // scale + 2, shape[1] // scale + 2)).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def countryside(t: float) -> np.ndarray:
    """Blue sky, yellow sun, green hills, a red house, a ball rolling by."""
    y = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None, None]
    sky = (1 - y) * np.array([70, 130, 230], np.float32) + y * np.array([190, 220, 250], np.float32)
    img = np.broadcast_to(sky, (HEIGHT, WIDTH, 3)).copy()
    cv2.circle(img, (390, 60), 28, (250, 215, 60), -1, cv2.LINE_AA)
    xs = np.arange(WIDTH)
    ridge = (170 + 18 * np.sin(xs / 55.0 + 0.4) + 8 * np.sin(xs / 17.0)).astype(int)
    grass = _noise(1, (HEIGHT, WIDTH), 6)[..., None]
    for x in range(WIDTH):
        img[ridge[x] :, x] = np.array([60, 140, 50], np.float32) * (0.75 + 0.5 * grass[ridge[x] :, x])
    cv2.rectangle(img, (90, 120), (170, 185), (200, 40, 35), -1)
    cv2.fillConvexPoly(img, np.array([[80, 122], [180, 122], [130, 85]]), (110, 60, 40), cv2.LINE_AA)
    cv2.rectangle(img, (118, 150), (140, 185), (90, 55, 30), -1)
    cx = int(40 + (WIDTH - 80) * t)
    cv2.circle(img, (cx, 228), 16, (240, 120, 20), -1, cv2.LINE_AA)
    return np.clip(img, 0, 255).astype(np.uint8)


def seaside(t: float) -> np.ndarray:
    """Warm sky, turquoise sea with waves, sand, a purple kite drifting."""
    y = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None, None]
    sky = (1 - y) * np.array([250, 170, 120], np.float32) + y * np.array([255, 225, 180], np.float32)
    img = np.broadcast_to(sky, (HEIGHT, WIDTH, 3)).copy()
    for x in range(WIDTH):
        top = 130 + int(3 * np.sin(x / 9.0 + 6 * t))
        img[top:200, x] = np.array([20, 150, 170], np.float32) * (0.85 + 0.25 * np.sin(x / 5.0 + 9 * t))
    sand = _noise(2, (HEIGHT, WIDTH), 3)[200:, :, None]
    img[200:] = np.array([225, 195, 130], np.float32) * (0.85 + 0.3 * sand)
    kx, ky = int(120 + 200 * t), int(70 + 15 * np.sin(8 * t))
    cv2.fillConvexPoly(img, np.array([[kx, ky - 22], [kx + 16, ky], [kx, ky + 26], [kx - 16, ky]]), (140, 50, 170), cv2.LINE_AA)
    cv2.line(img, (kx, ky + 26), (kx - 40, 260), (60, 60, 60), 1, cv2.LINE_AA)
    return np.clip(img, 0, 255).astype(np.uint8)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """Grey with the same CIE lightness, as a black-and-white film of the scene."""
    sys.path.insert(0, str(HERE.parent))
    from vidcolor.ops.color import rgb_to_grey_levels

    return rgb_to_grey_levels(rgb)


def tune(seconds: float) -> np.ndarray:
    """A few bars of a simple melody (stereo, float32)."""
    notes = [262, 330, 392, 523, 392, 330, 294, 349]
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    beat = np.minimum((t * 2).astype(int), len(notes) - 1) % len(notes)
    freq = np.array(notes)[beat]
    envelope = np.exp(-4 * ((t * 2) % 1))
    wave = (0.25 * envelope * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([wave, wave])


def main(out_dir: Path = HERE) -> None:
    refs = out_dir / "references"
    refs.mkdir(parents=True, exist_ok=True)
    scenes = [("countryside", countryside), ("seaside", seaside)]
    for name, scene in scenes:
        cv2.imwrite(str(refs / f"{name}.png"), cv2.cvtColor(scene(0.0), cv2.COLOR_RGB2BGR))
    film = out_dir / "countryside.mp4"
    with av.open(str(film), "w") as container:
        video = container.add_stream("libx264", rate=Fraction(FPS), options={"crf": "20"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "stereo"
        index = 0
        for _, scene in scenes:
            for k in range(SHOT_FRAMES):
                grey = to_grey(scene(k / SHOT_FRAMES))
                frame = av.VideoFrame.from_ndarray(grey, format="gray")
                frame.pts = index
                frame.time_base = Fraction(1, FPS)
                for packet in video.encode(frame):
                    container.mux(packet)
                index += 1
        samples = tune(index / FPS)
        for start in range(0, samples.shape[1], 1024):
            chunk = np.ascontiguousarray(samples[:, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = SAMPLE_RATE, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)
    print(f"wrote {film} and {refs}/")


if __name__ == "__main__":
    main()
