"""The MLOps course's reference `dataset_statistics` script, as students write it (the baseline).

Loads the processed tensors with torch.load, prints counts and shapes, saves a 25-image grid and two
label-distribution bar charts with pyplot. Usage: python bench/reference_dataset_statistics.py DIR OUT
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch


def load(datadir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = sorted(datadir.glob(f"{split}_images*.pt"))
    targets = sorted(datadir.glob(f"{split}_target*.pt"))
    return torch.cat([torch.load(p) for p in images]), torch.cat([torch.load(p) for p in targets])


def dataset_statistics(datadir: Path, out: Path) -> None:
    train_images, train_target = load(datadir, "train")
    test_images, test_target = load(datadir, "test")
    print("Train dataset: MNIST")
    print(f"Number of images: {len(train_images)}")
    print(f"Image shape: {train_images[0].shape}")
    print("\nTest dataset: MNIST")
    print(f"Number of images: {len(test_images)}")
    print(f"Image shape: {test_images[0].shape}")

    _, axes = plt.subplots(5, 5, figsize=(10, 10))
    for i, ax in enumerate(axes.flat):
        ax.imshow(train_images[i].squeeze(), cmap="gray")
        ax.set_title(f"Label: {train_target[i].item()}")
        ax.axis("off")
    plt.savefig(out / "mnist_images.png")
    plt.close()

    for name, target in (("train", train_target), ("test", test_target)):
        distribution = torch.bincount(target)
        plt.bar(torch.arange(len(distribution)), distribution)
        plt.title(f"{name.capitalize()} label distribution")
        plt.xlabel("Label")
        plt.ylabel("Count")
        plt.savefig(out / f"{name}_label_distribution.png")
        plt.close()


if __name__ == "__main__":
    dataset_statistics(Path(sys.argv[1]), Path(sys.argv[2]))
