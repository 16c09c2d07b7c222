"""The Inversion service and page helpers on an uploaded torch.export CNN (ResNet-shaped,
eval-mode BatchNorm, a fixed batch of 8) with an uploaded .npz dataset: the optimisation
runs and equals svdcore's, the input is drawn as an image, and the pseudo-inverse is
refused with a DataError sentence naming the optimisation (disabled in the Method list)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import svdcore as sc
from app.config import AppConfig
from app.services import InversionOptions, Services
from app.services.inversion import PAGE_HINT
from app.views.inversion.render import method_choices, render
from svdcore.inversion import training_outputs

SESSION = "S" * 43
SHAPE = (1, 10, 10)


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + x)


def _resnetish() -> nn.Module:
    """conv stem + BatchNorm + ReLU, two residual blocks, global average pool, Linear."""
    torch.manual_seed(0)
    stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    module = nn.Sequential(stem, _Block(4), _Block(4), pool, nn.Linear(4, 10))
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
    return module.eval()


@pytest.fixture(scope="module")
def uploaded(tmp_path_factory):
    """(services, model id, dataset id, the .pt2 path, x, y) after uploading both files."""
    tmp = tmp_path_factory.mktemp("inversion-export")
    services = Services(AppConfig(models=["digits"], upload_dir=tmp / "up"))
    model = tmp / "resnetish-b8.pt2"
    torch.export.save(torch.export.export(_resnetish(), (torch.randn(8, *SHAPE),)), model)
    x = torch.rand(45, *SHAPE, generator=torch.Generator().manual_seed(2)).numpy()
    y = np.arange(45) % 10
    data = tmp / "train.npz"
    np.savez(data, x=x, y=y)
    with open(model, "rb") as body:
        model_id = f"upload-{services.uploads.save_stream(SESSION, model.name, body).file_id}"
    with open(data, "rb") as body:
        stored = services.dataset_uploads.save_stream(SESSION, data.name, body)
    return services, model_id, f"upload-{stored.file_id}", model, x, y


def test_optimisation_runs_on_the_uploaded_cnn_and_equals_svdcore(uploaded):
    services, model_id, dataset, path, x, y = uploaded
    seen: list[int] = []
    opts = InversionOptions(target=2, method="optimise", start="min-img", steps=30, lr=0.05)
    data = services.inversion.run(
        model_id, opts, dataset, SESSION, progress=lambda s, _t, _d: seen.append(s)
    )
    assert seen == list(range(1, 31)) and data.history.size == 31
    assert data.distance <= data.start_distance and data.method == "optimise"
    assert data.n_train == 45 and data.data_name == "train.npz"
    # drawn as a 10 x 10 image (the upload has no zoo image shape: its input shape says it)
    assert data.image_shape == (10, 10) and data.channels == 1 and data.x.shape == (100,)
    assert data.bounds == (float(x.min()), float(x.max()))
    net = sc.load_model(path)
    outputs = training_outputs(net, x)  # as the service runs it: the engine, float64
    target = sc.ideal_output(outputs, y, 2)
    expected = sc.optimise_input(
        net,
        target,
        start="min-img",
        x_train=x,
        y_train=y,
        cls=2,
        steps=30,
        lr=0.05,
        bounds=data.bounds,
    )
    # the same float64 path on the same data: equal to float64 rounding (1e-6 is a bound)
    np.testing.assert_allclose(data.target, target.numpy(), rtol=1e-6)
    np.testing.assert_allclose(outputs.numpy(), net.forward(x).double().numpy(), atol=1e-5)
    np.testing.assert_allclose(data.x, expected.x.numpy().reshape(-1), rtol=1e-6, atol=1e-9)
    assert data.distance == pytest.approx(expected.distance, rel=1e-6)
    image, _, history, style, _, _ = render(data, "resnetish-b8.pt2")
    assert image.data[0].type == "heatmap" and image.data[0].z.shape == (10, 10)
    assert style == {"display": "block"} and len(history.data[0].y) == 31
    assert services.inversion.run(model_id, opts, dataset, SESSION, compute=False) is not None


def test_the_pseudo_inverse_is_refused_with_a_sentence_and_disabled(uploaded):
    services, model_id, dataset, path, *_ = uploaded
    refusals = services.inversion.refusals(model_id, SESSION)
    assert refusals["optimise"] is None
    assert "cannot be inverted layer by layer" in refusals["pseudo-inverse"]
    # named by the user's file name; a batch-1 archive of the same module (the same
    # content) gets its own sentence
    assert refusals["pseudo-inverse"].startswith("resnetish-b8.pt2 cannot")
    one = path.parent / "resnetish-b1.pt2"
    torch.export.save(torch.export.export(_resnetish(), (torch.randn(1, *SHAPE),)), one)
    with open(one, "rb") as body:
        one_id = f"upload-{services.uploads.save_stream(SESSION, one.name, body).file_id}"
    other = services.inversion.refusals(one_id, SESSION)["pseudo-inverse"]
    assert other.startswith("resnetish-b1.pt2 cannot")
    with pytest.raises(sc.DataError, match="cannot be inverted layer by layer") as err:
        services.inversion.run(model_id, InversionOptions(target=1), dataset, SESSION)
    assert str(err.value).endswith(PAGE_HINT) and "Traceback" not in str(err.value)
    # the Method list: the pseudo-inverse disabled, the optimisation selected, the reason
    options, select, note = method_choices(refusals, "pseudo-inverse")
    assert [o["disabled"] for o in options] == [True, False] and select == "optimise"
    assert note[0].id == "text-inversion-refusal-pseudo-inverse"
    assert "torch.export program" in note[0].children[1]
    # an optimisation already chosen stays; a chain keeps both methods
    assert method_choices(refusals, "optimise")[1] is None
    digits = services.inversion.refusals("digits", None)
    assert digits == {"pseudo-inverse": None, "optimise": None}
    options, select, note = method_choices(digits, "pseudo-inverse")
    assert not any(o["disabled"] for o in options) and select is None and note is None
