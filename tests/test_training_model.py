"""The multi-task network and its loss: shapes, and one optimisation step on a tiny synthetic batch."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from workstation.training.model import (IGNORE_INDEX, PLANE_CLASSES, MultiTaskLoss,  # noqa: E402
                                        PSFHMultiTaskNet, count_parameters, widen_network)

TINY = (8, 8, 16, 16, 16)
REPO_ROOT = Path(__file__).resolve().parents[1]


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


def test_dice_weights_make_the_pubic_symphysis_count_more():
    from workstation.training.model import soft_dice_loss

    target = torch.zeros(1, 32, 32, dtype=torch.long)
    target[0, 2:6, 2:12] = 1
    target[0, 12:30, 8:30] = 2
    logits = torch.zeros(1, 3, 32, 32)
    logits[0, 2][target[0] == 2] = 8.0  # the head is found, the symphysis is missed
    plain = soft_dice_loss(logits, target)
    weighted = soft_dice_loss(logits, target, weights=(2.0, 1.0))
    assert weighted > plain  # the missed class weighs more
    assert soft_dice_loss(logits, target, weights=(1.0, 1.0)) == pytest.approx(plain.item())


def _bar_logits(angle_deg: float, size: int = 64, label: int = 1, sharpness: float = 6.0) -> torch.Tensor:
    """Logits of a (1, 3, size, size) map with a bar of ``label`` through the centre at ``angle_deg``."""
    import math

    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    along = (xs - size / 2) * c + (ys - size / 2) * s
    across = -(xs - size / 2) * s + (ys - size / 2) * c
    inside = (along.abs() < size * 0.3) & (across.abs() < size * 0.06)
    logits = torch.zeros(1, 3, size, size)
    logits[0, label][inside] = sharpness
    return logits


def test_ps_axis_loss_measures_how_far_the_axis_turns():
    from workstation.training.model import ps_axis_loss

    target = _bar_logits(20.0).argmax(1)
    assert ps_axis_loss(_bar_logits(20.0), target) < 0.02
    turned = [ps_axis_loss(_bar_logits(20.0 + d), target).item() for d in (5, 10, 20, 90)]
    assert turned == sorted(turned) and turned[-1] > 1.9  # a perpendicular axis is the farthest (chord 2)
    assert turned[0] == pytest.approx(2 * torch.sin(torch.tensor(0.0873)).item(), abs=0.03)  # ~ twice the angle
    assert ps_axis_loss(_bar_logits(200.0), target) < 0.02  # an axis has no direction: 180 deg off is the same axis
    # frames without a PS (or with a round one) are left out; a batch of only those gives 0 with a gradient
    no_ps = torch.zeros(1, 64, 64, dtype=torch.long)
    logits = _bar_logits(20.0).requires_grad_(True)
    loss = ps_axis_loss(logits, no_ps)
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None


def test_the_axis_loss_turns_a_predicted_axis_toward_the_reference():
    from workstation.training.model import ps_axis_loss

    target = _bar_logits(20.0).argmax(1)
    logits = _bar_logits(35.0).requires_grad_(True)
    optimizer = torch.optim.SGD([logits], lr=50.0)
    first = ps_axis_loss(logits, target).item()
    for _ in range(30):
        optimizer.zero_grad()
        ps_axis_loss(logits, target).backward()
        optimizer.step()
    assert ps_axis_loss(logits, target).item() < 0.5 * first
    criterion = MultiTaskLoss(ps_axis_weight=1.0)
    model = PSFHMultiTaskNet(widths=TINY)
    _, parts = criterion(model(torch.randn(1, 1, 256, 256)), _bar_logits(20.0, size=256).argmax(1),
                         torch.tensor([IGNORE_INDEX]), torch.zeros(1, 2), torch.tensor([False]))
    assert 0.0 <= parts["ps_axis"] <= 2.0


def test_training_can_start_from_a_checkpoint(tmp_path):
    """--init: a run begins from the saved weights (with lr 0 its best checkpoint keeps them exactly)."""
    from conftest import shared_path
    from workstation.training.train import main

    data = shared_path("psfhs").parent
    torch.manual_seed(1)
    saved = PSFHMultiTaskNet()
    torch.save({"model": saved.state_dict()}, tmp_path / "init.pt")
    main(["--data", str(data), "--runs", str(tmp_path), "--name", "ft", "--limit", "4", "--batch-size", "2",
          "--epochs", "1", "--minutes", "5", "--lr", "0", "--no-export", "--init", str(tmp_path / "init.pt"),
          "--ps-dice-weight", "2", "--ps-axis-weight", "1"])
    log = (tmp_path / "ft" / "log.jsonl").read_text()
    assert '"event": "init"' in log and '"train_ps_axis"' in log
    trained = torch.load(tmp_path / "ft" / "best.pt", map_location="cpu", weights_only=False)["model"]
    for name, value in saved.named_parameters():  # buffers (BatchNorm statistics) move even at lr 0
        assert torch.equal(trained[name], value.detach()), name


def test_a_widened_network_computes_what_the_narrow_one_did_and_its_new_channels_learn():
    torch.manual_seed(2)
    narrow = PSFHMultiTaskNet(widths=TINY)
    narrow.train()
    with torch.no_grad():  # BatchNorm statistics away from the identity
        narrow(torch.randn(4, 1, 256, 256) * 2.0 + 0.3)
    wide = widen_network(narrow, (8, 12, 24, 20, 32))
    assert wide.widths == (8, 12, 24, 20, 32) and count_parameters(wide) > count_parameters(narrow)
    x = torch.randn(2, 1, 256, 256)
    for mode in ("eval", "train"):  # train mode: the old channels see the same batch statistics
        narrow.train(mode == "train")
        wide.train(mode == "train")
        with torch.no_grad():
            before, after = narrow(x), wide(x)
        checked = (0, 2) if mode == "train" else (0, 1, 2)  # the plane head's dropout draws differently in train mode
        for i in checked:
            assert torch.allclose(before[i], after[i], atol=1e-4), (mode, i)
    # one step moves the weights that bring the new channels in (they start at zero)
    reads_new = wide.enc2.down.pointwise[0].weight  # (24, 12, 1, 1): input channels 8.. are new
    assert torch.count_nonzero(reads_new[:16, 8:]) == 0
    criterion = MultiTaskLoss()
    optimizer = torch.optim.AdamW(wide.parameters(), lr=1e-3)
    seg_target = torch.randint(0, 3, (2, 256, 256))
    loss, _ = criterion(wide(x), seg_target, torch.tensor([0, 1]), torch.zeros(2, 2), torch.tensor([True, True]))
    loss.backward()
    optimizer.step()
    assert torch.count_nonzero(reads_new[:16, 8:]) > 0
    with pytest.raises(ValueError, match="at least"):
        widen_network(wide, TINY)


def test_training_can_widen_the_network_it_starts_from(tmp_path):
    """--init with --widths: the run goes on with the wider network, and its checkpoint rebuilds at that width."""
    from conftest import shared_path
    from workstation.training.export import load_checkpoint
    from workstation.training.train import main

    data = shared_path("psfhs").parent
    torch.manual_seed(3)
    torch.save({"model": PSFHMultiTaskNet(widths=TINY).state_dict(), "model_args": {"widths": list(TINY)}},
               tmp_path / "init.pt")
    main(["--data", str(data), "--runs", str(tmp_path), "--name", "wide", "--limit", "4", "--batch-size", "2",
          "--epochs", "1", "--minutes", "5", "--no-export", "--init", str(tmp_path / "init.pt"),
          "--widths", "8,12,24,20,32"])
    records = [json.loads(line) for line in (tmp_path / "wide" / "log.jsonl").read_text().splitlines()]
    assert [r["widths"] for r in records if r["event"] == "widened"] == [[8, 12, 24, 20, 32]]
    model, checkpoint = load_checkpoint(tmp_path / "wide" / "best.pt")
    assert model.widths == (8, 12, 24, 20, 32) and checkpoint["model_args"] == {"widths": [8, 12, 24, 20, 32]}
    with pytest.raises(SystemExit, match="--widths: .*at least"):
        main(["--data", str(data), "--runs", str(tmp_path), "--name", "narrower", "--limit", "4", "--no-export",
              "--init", str(tmp_path / "init.pt"), "--widths", "4,8,16,16,16"])
    with pytest.raises(SystemExit):  # argparse: not five integers
        main(["--data", str(data), "--widths", "8,8,16"])


def test_a_killed_run_resumes_after_its_last_finished_epoch(tmp_path, monkeypatch):
    """--resume: a run killed during its second epoch's validation goes on from the state after its first."""
    from conftest import shared_path
    from workstation.training import train

    data = shared_path("psfhs").parent
    arguments = ["--data", str(data), "--runs", str(tmp_path), "--limit", "4", "--batch-size", "2", "--minutes", "30",
                 "--no-export", "--select", "last", "--epochs", "2"]
    train.main(arguments + ["--name", "whole"])

    real_evaluate, calls = train.evaluate, []

    def killed_in_the_second_validation(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("machine restarted")
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", killed_in_the_second_validation)
    with pytest.raises(KeyboardInterrupt):
        train.main(arguments + ["--name", "broken"])
    monkeypatch.setattr(train, "evaluate", real_evaluate)
    assert torch.load(tmp_path / "broken" / "last.pt", map_location="cpu", weights_only=False)["epoch"] == 0
    train.main(arguments + ["--name", "broken", "--resume"])

    records = [json.loads(line) for line in (tmp_path / "broken" / "log.jsonl").read_text().splitlines()]
    whole = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert [r["after_epoch"] for r in records if r["event"] == "resume"] == [0]
    epochs = {r["epoch"]: r for r in records if r["event"] == "epoch"}
    whole_epochs = {r["epoch"]: r for r in whole if r["event"] == "epoch"}
    assert sorted(epochs) == [0, 1]  # epoch 0 from before the kill, epoch 1 after the resume; none twice
    # the step count and the learning-rate schedule go on (a fresh start would be back at step 4, a high rate)
    assert epochs[1]["steps"] == whole_epochs[1]["steps"] == 8
    assert epochs[1]["lr"] == pytest.approx(whole_epochs[1]["lr"], rel=1e-3)
    assert epochs[1]["t_s"] > epochs[0]["t_s"]  # and so does the clock of the wall-time budget
    # Adam's moments came back too: its step count runs over both halves
    state = torch.load(tmp_path / "broken" / "last.pt", map_location="cpu", weights_only=False)
    assert state["epoch"] == 1 and int(state["optimizer"]["state"][0]["step"]) == 8
    resumed = torch.load(tmp_path / "broken" / "best.pt", map_location="cpu", weights_only=False)
    assert resumed["epoch"] == 1
    assert resumed["export"]["training"]["command"].endswith("--epochs 2 --name broken")  # --resume is no argument


def test_resume_refuses_a_different_run(tmp_path):
    from conftest import shared_path
    from workstation.training.train import main

    data = shared_path("psfhs").parent
    with pytest.raises(SystemExit, match="no .*last.pt"):
        main(["--data", str(data), "--runs", str(tmp_path), "--name", "none", "--resume", "--limit", "2"])
    (tmp_path / "other").mkdir()
    torch.save({"argv": ["--epochs", "3"], "elapsed_s": 1.0}, tmp_path / "other" / "last.pt")
    with pytest.raises(SystemExit, match="arguments differ"):
        main(["--data", str(data), "--runs", str(tmp_path), "--name", "other", "--resume", "--limit", "2"])


def test_a_head_task_run_trains_and_scores_on_hc18_alone(tmp_path):
    """--task head: no PSFHS in training or validation, the HC18 head Dice picks the epoch, a head manifest."""
    from conftest import shared_path
    from workstation.training.train import main

    import shutil

    from workstation.inference.engine import load_model

    data = shared_path("hc18").parent
    out = tmp_path / "out"
    out.mkdir()
    for name in ("psfh-multitask.onnx", "psfh-multitask.json"):  # the main model the head model is attached to
        shutil.copy(REPO_ROOT / "models" / name, out / name)
    main(["--data", str(data), "--runs", str(tmp_path / "runs"), "--out", str(out), "--name", "head",
          "--task", "head", "--limit", "4", "--batch-size", "2", "--epochs", "1", "--minutes", "5",
          "--attach-to", "psfh-multitask"])
    records = [json.loads(line) for line in (tmp_path / "runs" / "head" / "log.jsonl").read_text().splitlines()]
    data_record = next(r for r in records if r["event"] == "data")
    assert data_record["cases"] == {"PSFHS": [0, 0], "HC18": [4, 4]} and data_record["train_items_per_epoch"] == 4
    val = next(r for r in records if r["event"] == "epoch")["val"]
    assert val["cases_psfhs"] == 0 and val["cases_hc18"] == 4 and val["score"] == val["dice_fh_hc18"] is not None
    manifest = json.loads((out / "head.json").read_text())
    assert manifest["role"] == "head_biometry" and set(manifest["outputs"]) == {"segmentation"}
    # --attach-to: the main model's manifest now names it, and the engine opens both
    model = load_model(str(out / "psfh-multitask.json"), device="cpu", threads=1)
    assert model.head_specialist.manifest.name == "head"
    assert model.describe()["head_biometry_model"]["used_on"] == "not_transperineal"
    with pytest.raises(SystemExit, match="needs --task head"):
        main(["--data", str(data), "--runs", str(tmp_path / "runs"), "--out", str(out), "--attach-to", "psfh-multitask"])
    with pytest.raises(SystemExit, match="no .*absent.json"):
        main(["--data", str(data), "--runs", str(tmp_path / "runs"), "--out", str(out), "--task", "head",
              "--attach-to", "absent"])


def test_averaged_epochs_keep_the_mean_of_their_weights_with_batchnorm_statistics_refreshed(tmp_path, monkeypatch):
    """--average-epochs: the kept network's parameters are the mean of those after each averaged epoch, trained at
    the constant --average-lr, and its BatchNorm statistics are recomputed for those weights."""
    from conftest import shared_path
    from workstation.training import train

    data = shared_path("psfhs").parent
    real_evaluate, after_epoch = train.evaluate, []

    def recording_evaluate(model, *args, **kwargs):
        after_epoch.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return real_evaluate(model, *args, **kwargs)

    monkeypatch.setattr(train, "evaluate", recording_evaluate)
    train.main(["--data", str(data), "--runs", str(tmp_path), "--name", "swa", "--limit", "4", "--batch-size", "2",
                "--epochs", "3", "--average-epochs", "2", "--lr", "1e-3", "--average-lr", "3e-4", "--minutes", "10",
                "--no-export"])
    assert len(after_epoch) == 4  # three epochs, then the averaged network
    kept = torch.load(tmp_path / "swa" / "best.pt", map_location="cpu", weights_only=False)
    assert kept["averaged_epochs"] == [1, 2]
    assert kept["export"]["training"]["selected_by"] == "weights averaged over epochs 1-2"
    model = PSFHMultiTaskNet()
    for name, _ in model.named_parameters():
        mean = (after_epoch[1][name] + after_epoch[2][name]) / 2
        assert torch.allclose(kept["model"][name], mean, atol=1e-6), name
        assert torch.allclose(after_epoch[3][name], mean, atol=1e-6), name  # what was validated is what was kept
    moved = [name for name, value in after_epoch[2].items() if name.endswith("running_mean")
             and not torch.allclose(kept["model"][name], value)]
    assert moved  # recomputed, not the last epoch's statistics
    records = [json.loads(line) for line in (tmp_path / "swa" / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["event"] == "epoch"]
    assert [r["lr"] for r in epochs[1:]] == [pytest.approx(3e-4), pytest.approx(3e-4)]
    assert epochs[0]["lr"] != pytest.approx(3e-4)
    averaged = [r for r in records if r["event"] == "averaged"]
    assert averaged[0]["epochs"] == [1, 2] and averaged[0]["val"]["dice_ps"] is not None
    with pytest.raises(SystemExit, match="--average-epochs"):
        train.main(["--data", str(data), "--epochs", "2", "--average-epochs", "3", "--runs", str(tmp_path)])


def test_the_network_reads_a_lower_resolution_for_a_fast_training_stage():
    """At 128 x 128 (train --train-size) every head still answers: the regression head's features are resized to
    the grid it was built for, and the segmentation comes back at the size it was given."""
    torch.manual_seed(0)
    model = PSFHMultiTaskNet(widths=TINY).eval()
    with torch.no_grad():
        seg, plane, regression = model(torch.zeros(2, 1, 128, 128))
    assert seg.shape == (2, 3, 128, 128) and plane.shape == (2, len(PLANE_CLASSES)) and regression.shape == (2, 2)


def test_scaled_batches_keep_their_classes_and_their_mean():
    from workstation.training.train import scaled_images, scaled_labels

    labels = torch.zeros(1, 256, 256, dtype=torch.long)
    labels[0, 64:128, 64:192] = 1
    labels[0, 160:, :] = IGNORE_INDEX
    small = scaled_labels(labels, 128)
    assert small.shape == (1, 128, 128) and small.dtype == labels.dtype
    assert set(small.unique().tolist()) == {0, 1, IGNORE_INDEX}  # nearest neighbour: no class between two others
    assert int((small == 1).sum()) == 64 * 128 // 4
    image = torch.rand(2, 1, 256, 256)
    assert scaled_images(image, 64).shape == (2, 1, 64, 64)
    assert float(scaled_images(image, 64).mean()) == pytest.approx(float(image.mean()), abs=1e-5)  # area: averaged
    assert scaled_images(image, None) is image and scaled_labels(labels, 256) is labels


def test_training_at_a_lower_resolution_shows_the_network_that_size(tmp_path, monkeypatch):
    """--train-size 64: training and validation batches reach the network at 64 x 64, the checkpoint says so, and
    a size the network cannot take is refused with the rule."""
    from conftest import shared_path
    from workstation.training import train
    from workstation.training.export import load_checkpoint

    seen = {True: set(), False: set()}  # training mode -> input sizes

    class Recording(PSFHMultiTaskNet):
        def forward(self, image):
            seen[self.training].add(tuple(image.shape[-2:]))
            return super().forward(image)

    monkeypatch.setattr(train, "PSFHMultiTaskNet", Recording)
    data = shared_path("psfhs").parent
    train.main(["--data", str(data), "--runs", str(tmp_path), "--name", "small", "--limit", "4", "--batch-size", "2",
                "--epochs", "1", "--minutes", "5", "--no-export", "--train-size", "64"])
    assert seen == {True: {(64, 64)}, False: {(64, 64)}}
    _, checkpoint = load_checkpoint(tmp_path / "small" / "best.pt")
    assert checkpoint["export"]["training"]["train_size"] == 64
    assert checkpoint["metrics"]["cases_psfhs"] == 4  # scored against the full-size labels, all four cases
    for size in ("100", "512"):
        with pytest.raises(SystemExit, match="multiple of 32 from 32 up to the model's input size"):
            train.main(["--data", str(data), "--runs", str(tmp_path), "--name", "bad", "--limit", "4", "--no-export",
                        "--train-size", size])
