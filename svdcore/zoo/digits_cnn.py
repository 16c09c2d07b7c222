"""A small residual CNN on scikit-learn's 8x8 digits: the kernel view of Pattichis Fig. 2.

Pattichis & Pattichis show the signal space of the first convolution of a residual block
of ResNet18 on MNIST: 64 x 64 = 4096 kernels of 3x3 summarised by nine signal kernels
``sigma_i v_i`` of the kernels matrix (out * in, 9). ``digits-cnn`` is that experiment in
miniature, on the same digits data and split as ``digits`` (``svdcore.zoo.digits``):

    input (N, 1, 8, 8)
    conv1  Conv2d(1, 8, 3x3, padding 1) -> act1 ReLU            h
    conv2  Conv2d(8, 8, 3x3, padding 1) -> act2 ReLU
    conv3  Conv2d(8, 8, 3x3, padding 1)                         r
    act3   ReLU(h + r)                                          (residual connection)
    fc1    Linear(8 * 8 * 8, 10) on the flattened feature maps  -> logits

``conv2`` and ``conv3`` are the residual block: their kernels views are (64, 9), 64
kernels of 3x3, exactly the Fig. 2 set-up. ReLU and the skip connection make this network
non-invertible layer by layer: its ideal inputs come from the optimisation method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from svdcore.zoo import digits
from svdcore.zoo._training import Progress, TrainOptions, run_training
from svdcore.zoo._types import TrainReport, ZooEntry

__all__ = ["CHANNELS", "DEFAULTS", "ENTRY", "DigitsCNN", "build", "make_data", "train"]

CHANNELS = 8
INPUT_SHAPE = (1, 8, 8)
DEFAULTS = TrainOptions(epochs=20, batch_size=32, lr=0.01)


class DigitsCNN(nn.Module):
    """conv1 -> ReLU -> [conv2 -> ReLU -> conv3] + skip -> ReLU -> flatten -> fc1.

    Input ``(N, 1, 8, 8)`` (``(N, 64)`` is reshaped), output ``(N, 10)`` logits.
    """

    def __init__(self, channels: int = CHANNELS):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act2 = nn.ReLU()
        self.conv3 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act3 = nn.ReLU()
        self.fc1 = nn.Linear(channels * digits.N_PIXELS, digits.N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.conv1(x.reshape(-1, *INPUT_SHAPE)))
        h = self.act3(h + self.conv3(self.act2(self.conv2(h))))
        return self.fc1(h.flatten(1))


def build() -> DigitsCNN:
    """A fresh digits CNN (PyTorch's default initialisation), in eval mode."""
    return DigitsCNN().eval()


def make_data(
    *, n: int | None = None, seed: int = 0, split: str = "test"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits data of :func:`svdcore.zoo.digits.make_data` as images.

    ``x`` float32 ``(n, 1, 8, 8)`` in [0, 1], ``y`` int64 ``(n,)``; same splits and subsets.
    """
    x, y = digits.make_data(n=n, seed=seed, split=split)
    return x.reshape(-1, *INPUT_SHAPE), y


def _kernel_cond(conv: nn.Conv2d) -> float:
    """sigma_1 / sigma_9 of the kernels view (out * in, 9)."""
    w = conv.weight.detach().double()
    s = torch.linalg.svdvals(w.reshape(w.shape[0] * w.shape[1], -1))
    return float(s[0] / s[-1])


def train(*, out: Path, progress: Progress = None, **options: Any) -> TrainReport:
    """Train the digits CNN and write its weights to ``out`` (safetensors + JSON sidecar).

    ``options`` replace fields of :data:`DEFAULTS` (``seed`` 0, ``epochs``, ``batch_size``,
    ``lr``, ``num_threads`` 1). Adam (lr 0.01) for 20 epochs of minibatches of 32,
    cross-entropy on the logits, on the 1438 training digits of the fixed split; scored on
    the 359 test digits. ``metrics``: ``test_accuracy``, ``train_accuracy``,
    ``fc1_condition_number``, ``conv1_kernels_condition_number``,
    ``conv2_kernels_condition_number``. A few seconds on one CPU thread; deterministic in
    ``seed``.
    """
    opts = DEFAULTS.updated("digits-cnn", options)
    recipe = {
        "optimizer": "Adam",
        "loss": "cross-entropy on the logits",
        "split": f"stratified 80%/20%, seed {digits.SPLIT_SEED} (as digits)",
    }

    def body() -> tuple[nn.Module, dict[str, float], str]:
        module, metrics = digits.fit_classifier(
            build,
            make_data,
            options=opts,
            optimizer=lambda m: torch.optim.Adam(m.parameters(), lr=opts.lr),
            progress=progress,
        )
        metrics["conv1_kernels_condition_number"] = _kernel_cond(module.conv1)
        metrics["conv2_kernels_condition_number"] = _kernel_cond(module.conv2)
        return module, metrics, digits.accuracy_summary(metrics)

    return run_training(
        "digits-cnn", out=out, options=opts, recipe=recipe, progress=progress, body=body
    )


_DESCRIPTION = (
    "A small residual CNN on scikit-learn's 8x8 digits, the kernel-view analogue of "
    "Pattichis & Pattichis Fig. 2 (the first convolution of a ResNet18 residual block on "
    "MNIST): conv1 (1 -> 8 channels, 3x3) -> ReLU, then a residual block conv2, conv3 "
    "(8 -> 8, 3x3) with a skip connection, then a Linear layer from the 8x8x8 feature maps "
    "to the 10 classes. Open conv2 or conv3 in the kernels view: 64 kernels of 3x3 as a "
    "64 x 9 matrix whose nine signal kernels sigma_i v_i show the directions the block is "
    "selective to. The paper reports a condition number of 1.07 for ResNet18's kernels; "
    "for conv2 of these shipped weights it is 4.21. ReLU and the skip connection make the "
    "network non-invertible, so ideal inputs come from optimisation. Test accuracy of the "
    "shipped weights: 0.989 on the 359 held-out digits."
)

ENTRY = ZooEntry(
    name="digits-cnn",
    title="Digits, residual CNN (Pattichis Fig. 2 analogue)",
    description=_DESCRIPTION,
    input_shape=INPUT_SHAPE,
    image_shape=digits.IMAGE_SHAPE,
    build=build,
    make_data=make_data,
    train=train,
)
