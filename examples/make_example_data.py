"""Write ``examples/data/``: a small digits dataset in the course layout, for the demo workflow.

28x28 float32 images in [0, 1] (white digit on black, like MNIST) drawn with Pillow's default font,
randomly scaled, shifted, rotated, blurred and noised; 1,900 train images in two shards and 500 test
images (about 7.5 MB). Findings planted on purpose so the demo comment has something to show:
2 exact duplicates inside train, 3 test images copied from train (leakage), and fewer 5s than
other digits (imbalance). Deterministic: rerunning writes identical tensors.

    python examples/make_example_data.py [OUTPUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

N_TRAIN, N_TEST, SHARDS, SEED = 1900, 500, 2, 0
DUPLICATES, LEAKS = 2, 3
# digit 5 is drawn half as often as the others
DIGIT_WEIGHTS = np.array([1, 1, 1, 1, 1, 0.5, 1, 1, 1, 1]) / 9.5


def draw_digit(digit: int, rng: np.random.Generator) -> np.ndarray:
    """One 28x28 float32 image of ``digit``."""
    canvas = Image.new("L", (56, 56), 0)  # drawn at 2x, then downsampled: smoother strokes
    font = ImageFont.load_default(size=int(rng.integers(34, 46)))
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font, stroke_width=1)
    x = (56 - (right - left)) / 2 - left + rng.normal(0, 3)
    y = (56 - (bottom - top)) / 2 - top + rng.normal(0, 3)
    draw.text((x, y), str(digit), fill=255, font=font, stroke_width=int(rng.integers(0, 3)), stroke_fill=255)
    if rng.random() < 0.3:  # a stray pen stroke
        points = rng.integers(4, 52, 4).tolist()
        draw.line(points, fill=int(rng.integers(80, 200)), width=2)
    canvas = canvas.rotate(float(rng.normal(0, 12)), resample=Image.Resampling.BICUBIC)
    canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    small = np.asarray(canvas.resize((28, 28), Image.Resampling.LANCZOS), dtype=np.float32) / 255
    noisy = small + rng.normal(0, 0.04, small.shape).astype(np.float32)
    return np.clip(noisy, 0, 1).astype(np.float32)


def make(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.choice(10, size=n, p=DIGIT_WEIGHTS)
    return np.stack([draw_digit(int(d), rng) for d in labels]), labels.astype(np.int64)


def main(out: Path) -> None:
    rng = np.random.default_rng(SEED)
    train_x, train_y = make(N_TRAIN, rng)
    test_x, test_y = make(N_TEST, rng)
    sources = rng.choice(N_TRAIN // 2, size=DUPLICATES + LEAKS, replace=False)
    for i, source in enumerate(sources[:DUPLICATES]):  # copies land in the second half, after their source
        copy = N_TRAIN - 1 - 100 * i
        train_x[copy], train_y[copy] = train_x[source], train_y[source]
    for i, source in enumerate(sources[DUPLICATES:]):
        test_x[10 * i], test_y[10 * i] = train_x[source], train_y[source]
    out.mkdir(parents=True, exist_ok=True)
    for i, index in enumerate(np.array_split(np.arange(N_TRAIN), SHARDS)):
        torch.save(torch.from_numpy(train_x[index].copy()), out / f"train_images_{i}.pt")
        torch.save(torch.from_numpy(train_y[index].copy()), out / f"train_target_{i}.pt")
    torch.save(torch.from_numpy(test_x), out / "test_images.pt")
    torch.save(torch.from_numpy(test_y), out / "test_target.pt")
    size = sum(p.stat().st_size for p in out.glob("*.pt"))
    print(f"wrote {N_TRAIN} train + {N_TEST} test images to {out} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "data")
