"""Write ``examples/model/model.pt``: a tiny CNN trained on ``examples/data``, saved as TorchScript.

It is the model the CI smoke test gates (`mode: model-gate`, `model: examples/model/model.pt`,
`eval-data: examples/data`) and the one to try model-gate on locally. Two small conv blocks and a
linear head (about 6,000 parameters, a file of well under 200 KB), trained for three epochs on the
1,900 train images on one CPU thread (a few seconds). Deterministic: the same torch version on the
same kind of CPU writes the same weights (the archive's bytes still differ between runs: TorchScript
stores a random serialization id).

    python examples/model/make_example_model.py [OUTPUT_FILE]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
SEED, EPOCHS, BATCH, LR = 0, 3, 32, 3e-3


class TinyCNN(nn.Module):
    """1x28x28 -> 10 logits: conv(6) -> pool -> conv(12) -> pool -> linear."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 12, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(12 * 7 * 7, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(x).flatten(1))
        return logits


def load_split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as (N, 1, 28, 28) float32 in [0, 1] and int64 labels, every shard of ``split``."""
    images = sorted(DATA.glob(f"{split}_images*.pt"))
    targets = sorted(DATA.glob(f"{split}_target*.pt"))
    x = torch.cat([torch.load(p, weights_only=True) for p in images]).float().unsqueeze(1)
    y = torch.cat([torch.load(p, weights_only=True) for p in targets]).long()
    return x, y


def train() -> TinyCNN:
    x, y = load_split("train")
    torch.manual_seed(SEED)
    model = TinyCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(y))
        for start in range(0, len(y), BATCH):
            batch = order[start : start + BATCH]
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def main(out: Path) -> None:
    torch.set_num_threads(1)  # one thread: reproducible sums, and fast enough for a model this small
    model = train()
    x, y = load_split("test")
    with torch.no_grad():
        accuracy = (model(x).argmax(dim=1) == y).float().mean().item()
    with warnings.catch_warnings():
        # torch 2.9+ marks TorchScript deprecated; it is still the one format that loads without the
        # model's Python class, which is what a bundled example needs
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(out))
    params = sum(p.numel() for p in model.parameters())
    print(f"{out}: {params:,} parameters, {out.stat().st_size / 1024:.0f} KB, test accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "model.pt")
