"""Robustness: accuracy under Gaussian noise (sigma ``eps``) and under an FGSM attack (step ``eps``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_noise(shape: Sequence[int], sigma: float, generator: torch.Generator) -> Tensor:
    """Noise to add to one batch; drawn once and shared by candidate and production."""
    return torch.randn(list(shape), generator=generator) * sigma


def fgsm(module: Callable[[Tensor], Tensor], x: Tensor, labels: Tensor, eps: float, *, clamp: bool) -> Tensor:
    """One fast-gradient-sign step of size ``eps`` up the cross-entropy loss (kept in [0, 1] if ``clamp``)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(module(x), labels)
        (grad,) = torch.autograd.grad(loss, [x])
    adversarial = x.detach() + eps * grad.sign()
    return adversarial.clamp(0, 1) if clamp else adversarial


class Robustness:
    """Correct predictions of one model on perturbed batches; FGSM is given up (with a note) for a
    model that has no gradient, such as some TorchScript or exported graphs."""

    def __init__(self, module: Callable[[Tensor], Tensor], model_format: str, eps: float) -> None:
        self.module = module
        self.model_format = model_format
        self.eps = eps
        self.gaussian_correct = 0
        self.fgsm_correct: int | None = 0
        self.notes: list[str] = []

    def add(self, x: Tensor, labels: Tensor, noise: Tensor, *, clamp: bool) -> None:
        noisy = x + noise
        self.gaussian_correct += _correct(labels, self._predict(noisy.clamp(0, 1) if clamp else noisy))
        if self.fgsm_correct is None:
            return
        try:
            adversarial = fgsm(self.module, x, labels, self.eps, clamp=clamp)
        except Exception as exc:
            self.fgsm_correct = None
            self.notes.append(f"FGSM skipped: no gradient through this {self.model_format} model ({exc}).")
            return
        self.fgsm_correct += _correct(labels, self._predict(adversarial))

    def accuracies(self, samples: int) -> dict[str, float]:
        """``{"gaussian@<eps>": accuracy, "fgsm@<eps>": accuracy}`` over ``samples`` items."""
        result = {f"gaussian@{self.eps:g}": self.gaussian_correct / samples}
        if self.fgsm_correct is not None:
            result[f"fgsm@{self.eps:g}"] = self.fgsm_correct / samples
        return result

    def _predict(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.module(x).argmax(dim=1)


def _correct(labels: Tensor, predicted: Tensor) -> int:
    return int((labels == predicted).sum())
