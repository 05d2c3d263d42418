"""The multi-task network and its loss: shapes, and one optimisation step on a tiny synthetic batch."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from workstation.training.model import (IGNORE_INDEX, PLANE_CLASSES, MultiTaskLoss,  # noqa: E402
                                        PSFHMultiTaskNet, count_parameters)

TINY = (8, 8, 16, 16, 16)


def test_output_shapes_and_size():
    torch.manual_seed(0)
    model = PSFHMultiTaskNet().eval()
    assert 250_000 < count_parameters(model) < 1_500_000  # light enough for <= 15 ms on 2 CPU cores
    with torch.no_grad():
        seg, plane, regression = model(torch.zeros(2, 1, 256, 256))
    assert seg.shape == (2, 3, 256, 256)
    assert plane.shape == (2, len(PLANE_CLASSES))
    assert regression.shape == (2, 2)


def test_one_step_forward_backward_updates_every_head():
    torch.manual_seed(0)
    model = PSFHMultiTaskNet(widths=TINY)
    criterion = MultiTaskLoss()
    optimizer = torch.optim.SGD(list(model.parameters()) + list(criterion.parameters()), lr=0.1)
    image = torch.randn(2, 1, 256, 256)
    seg = torch.zeros(2, 256, 256, dtype=torch.long)
    seg[:, 40:80, 40:120] = 1
    seg[:, 120:220, 100:220] = 2
    plane = torch.tensor([0, IGNORE_INDEX])
    regression = torch.tensor([[0.6, 0.1], [0.0, 0.0]])
    mask = torch.tensor([True, False])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    loss, parts = criterion(model(image), seg, plane, regression, mask)
    assert torch.isfinite(loss) and set(parts) == {"seg", "plane", "regression"}
    optimizer.zero_grad()
    loss.backward()
    for head in ("seg_head.weight", "plane_head.1.weight", "regression_head.3.weight"):
        assert model.get_parameter(head).grad is not None and model.get_parameter(head).grad.abs().sum() > 0
    assert criterion.log_vars.grad is not None
    optimizer.step()
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())


def test_loss_without_plane_or_regression_targets_is_finite():
    model = PSFHMultiTaskNet(widths=TINY)
    criterion = MultiTaskLoss()
    outputs = model(torch.randn(1, 1, 256, 256))
    loss, parts = criterion(outputs, torch.zeros(1, 256, 256, dtype=torch.long), torch.tensor([IGNORE_INDEX]),
                            torch.zeros(1, 2), torch.tensor([False]))
    assert torch.isfinite(loss)
    assert parts["plane"] == 0.0 and parts["regression"] == 0.0
    loss.backward()
