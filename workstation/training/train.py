"""Train the multi-task intrapartum network, keep the best epoch on the validation split, export it to ONNX.

    python -m workstation.training.train --data ../shared/data --out models/ --epochs 60 --minutes 120 --seed 0

* Two budgets, whichever ends first: ``--epochs`` and ``--minutes`` (wall clock, including the
  final validation and export, so a 2 h slot is a 2 h slot). The learning rate follows a cosine
  over the *progress*, max(step / planned steps, elapsed / budget), so a run stopped by the clock
  still ends on a small learning rate instead of being cut mid-schedule.
* After every epoch the validation split is scored; the best epoch (mean Dice of PS and FH on
  PSFHS validation) is kept in ``runs/<name>/best.pt`` and the final export uses it. With
  ``--select last`` the last epoch is kept instead, so that the validation split chooses nothing.
* Fixed seeds everywhere (torch, numpy, per-sample augmentation seeded by (seed, epoch, index));
  deterministic algorithms are requested (warn-only: a few CPU kernels have no deterministic twin).
  With those kernels and the clock in the schedule, two runs of one command end close, not
  bit-identical (the first epoch's loss differs in the third decimal).
* ``--average-epochs N`` averages the weights over the run's last N planned epochs (stochastic weight
  averaging, Izmailov et al., UAI 2018): the learning rate holds at ``--average-lr`` through them, the
  BatchNorm statistics are then recomputed on training items, and the averaged network is the one kept.
* ``runs/<name>/last.pt`` holds the whole state after every epoch; ``--resume`` with the same
  arguments goes on from it after a kill or restart.
* ``--train-size N`` trains on the items scaled down to N x N (progressive resizing: a 128-pixel epoch costs a
  fifth of a 256-pixel one on 2 cores), and scores the validation split at that size too; a later stage at the
  model's own size (``--init``) fine-tunes what it learnt. The targets are unchanged: the HSD is a length in the
  model's input pixels whatever size the network is shown.
* CUDA when available (``--device auto``), else the CPU with ``--threads`` (2 by default: the
  workstation class of machine).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import random
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from workstation.evaluate import dice, mean_of_known
from workstation.inference.planes import BIOMETRY_PLANE
from workstation.paths import replacing
from workstation.training import data as D
from workstation.training.export import export_model, load_checkpoint, model_from_onnx, update_manifest
from workstation.training.model import (DEFAULT_WIDTHS, IGNORE_INDEX, PLANE_CLASSES, REGRESSION_SCALE,
                                        MultiTaskLoss, PSFHMultiTaskNet, count_parameters, widen_network)

REPO_ROOT = Path(__file__).resolve().parents[2]
FINAL_RESERVE_S = 75.0  # kept back from --minutes for the last validation + export + model card


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def resolve_data(path: str) -> Path:
    """--data as given when it exists from here, else relative to the repository root (the documented default)."""
    candidate = Path(path)
    if candidate.exists() or candidate.is_absolute():
        return candidate
    return REPO_ROOT / candidate


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# --------------------------------------------------------------------------- validation

def scaled_images(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """The (N, C, H, W) batch at size x size (area averaging, as a scanner's coarser grid would see it); as it is
    when size is None or already its size."""
    if size is None or images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="area")


def scaled_labels(labels: torch.Tensor, size: int | None) -> torch.Tensor:
    """The (N, H, W) label maps at size x size, nearest neighbour so that classes and the ignore label stay whole."""
    if size is None or labels.shape[-2:] == (size, size):
        return labels
    return F.interpolate(labels[:, None].float(), size=(size, size), mode="nearest")[:, 0].to(labels.dtype)


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: D.ValidationSet, device: torch.device, batch_size: int = 16,
             with_geometry: bool = True, input_size: int | None = None) -> dict:
    """Validation metrics: Dice per class, AoP error (masks and regression head), plane accuracy. With
    ``input_size`` the network sees the images at that size; its segmentation is scored at the labels' size."""
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    dice_ps, dice_fh, dice_hc18, aop_err_masks, aop_err_reg, hsd_err_reg = [], [], [], [], [], []
    plane_hits: dict[int, list[bool]] = {}
    refused = 0
    for batch in loader:
        seg_logits, plane_logits, regression = model(scaled_images(batch["image"].to(device), input_size))
        if seg_logits.shape[-2:] != batch["seg"].shape[-2:]:
            seg_logits = F.interpolate(seg_logits, size=batch["seg"].shape[-2:], mode="bilinear", align_corners=False)
        pred = seg_logits.argmax(1).cpu().numpy().astype(np.uint8)
        plane_pred = plane_logits.argmax(1).cpu().numpy()
        regression = regression.cpu().numpy() * np.asarray(REGRESSION_SCALE)
        ref = batch["seg"].numpy()
        for i, kind in enumerate(batch["kind"]):
            target_plane = int(batch["plane"][i])
            if target_plane != IGNORE_INDEX:
                plane_hits.setdefault(target_plane, []).append(int(plane_pred[i]) == target_plane)
            if kind == "psfhs":
                dice_ps.append(dice(pred[i] == 1, ref[i] == 1))
                dice_fh.append(dice(pred[i] == 2, ref[i] == 2))
                if bool(batch["regression_mask"][i]):
                    target = batch["regression"][i].numpy() * np.asarray(REGRESSION_SCALE)
                    aop_err_reg.append(abs(regression[i, 0] - target[0]))
                    hsd_err_reg.append(abs(regression[i, 1] - target[1]))
                    if with_geometry:
                        measured = D.reference_targets(pred[i])
                        if measured is None:
                            refused += 1
                        else:
                            aop_err_masks.append(abs(measured[0] - target[0]))
            elif kind == "hc18":
                dice_hc18.append(dice(pred[i] == 2, ref[i] == 2))
    all_hits = [h for hits in plane_hits.values() for h in hits]
    metrics = {
        "dice_ps": mean_of_known(dice_ps), "dice_fh": mean_of_known(dice_fh), "dice_fh_hc18": mean_of_known(dice_hc18),
        "aop_mae_deg": mean_of_known(aop_err_masks) if with_geometry else None,
        "aop_refused": refused if with_geometry else None,
        "aop_mae_deg_regression": mean_of_known(aop_err_reg), "hsd_mae_px_regression": mean_of_known(hsd_err_reg),
        "plane_accuracy": mean_of_known(all_hits),
        "plane_accuracy_per_class": {class_name: mean_of_known(plane_hits.get(k, [])) for k, class_name in
                                     enumerate(PLANE_CLASSES)},
        "cases_psfhs": len(dice_ps), "cases_hc18": len(dice_hc18),
    }
    # The epoch score: mean PS/FH Dice on PSFHS; a head-biometry run (no PSFHS) is scored by its HC18 head Dice.
    if metrics["dice_ps"] is not None:
        metrics["score"] = round(0.5 * (metrics["dice_ps"] + metrics["dice_fh"]), 4)
    else:
        metrics["score"] = metrics["dice_fh_hc18"]
    return metrics


# --------------------------------------------------------------------------- training

def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must be integers separated by commas, not {text!r}") from None
    if len(widths) != len(DEFAULT_WIDTHS) or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be {len(DEFAULT_WIDTHS)} positive integers separated by commas, "
                                         f"not {text!r}")
    return widths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workstation.training.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data", help="folder with psfhs/ and hc18/ (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("models"), help="where the .onnx/.json/.md go")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="checkpoints and logs (git-ignored)")
    parser.add_argument("--name", default="psfh-multitask")
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--minutes", type=float, default=120.0, help="wall-clock budget, export included")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--placeholder", action="store_true", help="mark the exported model as a placeholder")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--hc18-per-epoch", type=int, default=160, help="HC18 frames mixed into each epoch")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N cases per dataset/split (smoke runs)")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from the weights of a best.pt, or of an exported .onnx such as a shipped model "
                             "(fine-tuning), instead of random ones")
    parser.add_argument("--ps-dice-weight", type=float, default=1.0,
                        help="weight of the pubic symphysis in the Dice loss (fetal head 1)")
    parser.add_argument("--select", choices=("dice", "last"), default="dice",
                        help="which epoch to keep: best mean Dice on the validation split, or the last one (when "
                             "the validation split should not choose, e.g. to report its AoP error untouched)")
    parser.add_argument("--ps-axis-weight", type=float, default=0.0,
                        help="weight of the loss on the pubic symphysis axis direction (model.ps_axis_loss); 0 = off")
    parser.add_argument("--task", choices=("multitask", "head"), default="multitask",
                        help="multitask: the PSFHS + HC18 network; head: a head-biometry specialist for HC, trained "
                             "and scored on HC18 alone (every HC18 training case each epoch)")
    parser.add_argument("--attach-to", default=None, metavar="MAIN_MODEL",
                        help="with --task head: after the export, name this head model in the manifest of the main "
                             "model MAIN_MODEL in --out, so the engine uses it on axial head planes")
    parser.add_argument("--widths", type=_widths, default=None, metavar="W0,W1,W2,W3,W4",
                        help=f"channels per resolution (default {','.join(map(str, DEFAULT_WIDTHS))}); with --init, a "
                             "network narrower than these is widened with its function kept (model.widen_network)")
    parser.add_argument("--average-epochs", type=int, default=0, metavar="N",
                        help="average the weights over the last N planned epochs (stochastic weight averaging) at a "
                             "constant --average-lr, recompute the BatchNorm statistics and keep that network; 0 = off")
    parser.add_argument("--average-lr", type=float, default=None,
                        help="the constant learning rate of the averaged epochs (default: a tenth of --lr)")
    parser.add_argument("--train-size", type=int, default=None, metavar="N",
                        help="train (and score the validation split) on the items scaled to N x N pixels, e.g. 128 "
                             "for a fast first stage; default: the model's input size")
    parser.add_argument("--resume", action="store_true",
                        help="go on from the run's last.pt (written after every epoch) with the same arguments, "
                             "e.g. after the machine restarted; its clock and learning-rate schedule carry on")
    return parser


def _input_images(batch: dict, device: torch.device, size: int | None = None) -> torch.Tensor:
    image = scaled_images(batch["image"].to(device), size)  # scaled where the network runs (a GPU if any)
    if device.type == "cpu":
        image = image.contiguous(memory_format=torch.channels_last)  # the layout the model is in on CPU
    return image


def _add_to_average(average: dict | None, model: torch.nn.Module, count: int) -> dict:
    """The running mean of the network's parameters after ``count`` earlier epochs, with this one added."""
    current = {name: value.detach().cpu().clone() for name, value in model.named_parameters()}
    if not count:
        return current
    return {name: mean + (current[name] - mean) / (count + 1) for name, mean in average.items()}


@torch.no_grad()
def averaged_network(model: torch.nn.Module, average: dict, loader: DataLoader, device: torch.device,
                     size: int | None = None) -> torch.nn.Module:
    """A copy of ``model`` with the averaged parameters and BatchNorm statistics recomputed for them over one pass
    of ``loader`` (the running statistics of the last epoch belong to other weights)."""
    averaged = copy.deepcopy(model)
    for name, value in averaged.named_parameters():
        value.copy_(average[name].to(value.device))
    torch.optim.swa_utils.update_bn((_input_images(batch, device, size) for batch in loader), averaged)
    return averaged.eval()


def save_resume_state(path: Path, state: dict) -> None:
    """last.pt, written whole or not at all: a kill while saving leaves the previous epoch's state."""
    with replacing(path) as partial:
        torch.save(state, partial)


def _run_arguments(argv: list[str] | None) -> list[str]:
    """The run's arguments without --resume, to check that a resumed run is the same run."""
    return [a for a in (sys.argv[1:] if argv is None else argv) if a != "--resume"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.attach_to and (args.task != "head" or args.no_export):
        raise SystemExit("--attach-to needs --task head and an export (no --no-export)")
    if args.attach_to and not (args.out / f"{args.attach_to}.json").is_file():
        raise SystemExit(f"--attach-to: no {args.out / (args.attach_to + '.json')} to attach the head model to")
    if not 0 <= args.average_epochs <= args.epochs:
        raise SystemExit(f"--average-epochs must be between 0 and --epochs ({args.epochs}), not {args.average_epochs}")
    average_lr = args.lr * 0.1 if args.average_lr is None else args.average_lr
    started = time.monotonic()
    budget_s = args.minutes * 60.0
    torch.set_num_threads(max(1, args.threads))
    seed_everything(args.seed)
    device = pick_device(args.device)
    data_root = resolve_data(args.data)
    run_dir = args.runs / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "log.jsonl"
    run_arguments = _run_arguments(argv)
    resume_path = run_dir / "last.pt"
    resumed = None
    if args.resume:
        if not resume_path.exists():
            raise SystemExit(f"--resume: no {resume_path} to go on from (was the run started with this --runs/--name?)")
        resumed = torch.load(resume_path, map_location="cpu", weights_only=False)
        if resumed["argv"] != run_arguments:
            raise SystemExit("--resume: the arguments differ from the stopped run's: "
                             + " ".join(resumed["argv"]))
        started -= resumed["elapsed_s"]  # the wall-clock budget and the schedule count the time already spent
    else:
        log_path.write_text("", encoding="utf-8")

    def log(record: dict) -> None:
        record = {"t_s": round(time.monotonic() - started, 1), **record}
        print(json.dumps(record), flush=True)
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    splits = {(name, split): fn(data_root, split)[:args.limit] for name, fn in (("PSFHS", D.psfhs_cases),
                                                                               ("HC18", D.hc18_cases))
              for split in ("train", "val")}
    if args.task == "head":
        if not splits[("HC18", "train")]:
            raise SystemExit(f"no HC18 cases under {data_root / 'hc18'} (is --data right?)")
        # The head specialist sees HC18 only: PSFHS is left out of both its training and its validation.
        splits[("PSFHS", "train")], splits[("PSFHS", "val")] = [], []
    elif not splits[("PSFHS", "train")]:
        raise SystemExit(f"no PSFHS cases under {data_root / 'psfhs'} (is --data right?)")
    train_set = D.TrainingMix(splits[("PSFHS", "train")], splits[("HC18", "train")], seed=args.seed,
                              hc18_per_epoch=None if args.task == "head" else args.hc18_per_epoch)
    val_set = D.ValidationSet(splits[("PSFHS", "val")], splits[("HC18", "val")],
                              synthetic_each=min(40, max(4, len(splits[("PSFHS", "val")]) // 4)))
    cases = {name: (len(splits[(name, "train")]), len(splits[(name, "val")])) for name in ("PSFHS", "HC18")}
    log({"event": "data", "root": str(data_root), "cases": cases, "train_items_per_epoch": len(train_set),
         "val_items": len(val_set), "device": str(device)})

    if args.init is not None and args.init.suffix == ".onnx":
        # The BatchNorm statistics come from the first training items, the data the fine-tune goes on with.
        calibration = torch.from_numpy(np.stack([train_set[i]["image"] for i in range(min(64, len(train_set)))]))
        model = model_from_onnx(args.init, calibration=calibration)
        log({"event": "init", "from": str(args.init), "batchnorm_statistics_from_items": len(calibration)})
    elif args.init is not None:
        model, _ = load_checkpoint(args.init)
        log({"event": "init", "from": str(args.init)})
    else:
        model = PSFHMultiTaskNet(widths=args.widths or DEFAULT_WIDTHS)
    if args.widths and args.widths != model.widths:
        try:
            model = widen_network(model, args.widths)
        except ValueError as error:
            raise SystemExit(f"--widths: {error}") from None
        log({"event": "widened", "widths": list(model.widths)})
    model_args = {"widths": list(model.widths)}
    train_size = None if args.train_size in (None, model.input_size) else args.train_size
    if train_size is not None and (not 32 <= train_size < model.input_size or train_size % 32):
        raise SystemExit(f"--train-size must be a multiple of 32 from 32 up to the model's input size "
                         f"({model.input_size}), not {args.train_size}")
    model = model.to(device)
    criterion = MultiTaskLoss(ps_dice_weight=args.ps_dice_weight, ps_axis_weight=args.ps_axis_weight).to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)  # measurably faster depthwise convs on CPU
    optimizer = torch.optim.AdamW([{"params": model.parameters(), "weight_decay": args.weight_decay},
                                   {"params": criterion.parameters(), "weight_decay": 0.0}], lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=args.workers,
                        generator=generator)  # not persistent: workers must see set_epoch
    planned_steps = max(1, args.epochs * len(loader))
    train_budget_s = max(0.0, budget_s - FINAL_RESERVE_S)
    warmup_steps = min(100, planned_steps // 20)
    if args.average_epochs:
        train_budget_s = max(0.0, train_budget_s - 60.0)  # the BatchNorm pass and the averaged network's validation
    # The cosine runs over the epochs before the averaged ones, which hold their learning rate.
    first_averaged_epoch = args.epochs - args.average_epochs
    cosine_steps = max(1, first_averaged_epoch * len(loader))
    cosine_budget_s = train_budget_s * first_averaged_epoch / args.epochs
    command = "python -m workstation.training.train " + " ".join(shlex.quote(a) for a in run_arguments)
    log({"event": "model", "params": count_parameters(model), "planned_steps": planned_steps})

    best_score, best_metrics, best_epoch, step, epochs_done = -1.0, None, -1, 0, 0
    out_of_time = False
    last_validation_s = 30.0  # replaced by the measured time after the first validation
    first_epoch = 0
    average, averaged_epochs = None, []
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        criterion.load_state_dict(resumed["criterion"])
        optimizer.load_state_dict(resumed["optimizer"])
        generator.set_state(resumed["generator"])
        torch.set_rng_state(resumed["torch_rng"])
        np.random.set_state(resumed["numpy_rng"])
        random.setstate(resumed["python_rng"])
        best_score, best_metrics, best_epoch = resumed["best_score"], resumed["best_metrics"], resumed["best_epoch"]
        step, epochs_done, last_validation_s = resumed["step"], resumed["epochs_done"], resumed["last_validation_s"]
        first_epoch = resumed["epoch"] + 1
        average, averaged_epochs = resumed.get("average"), resumed.get("averaged_epochs", [])
        log({"event": "resume", "after_epoch": resumed["epoch"], "steps": step})
    for epoch in range(first_epoch, args.epochs):
        train_set.set_epoch(epoch)
        model.train()
        epoch_start, sums, batches = time.monotonic(), {}, 0
        averaging = epoch >= first_averaged_epoch
        peak_lr = average_lr if averaging and first_averaged_epoch == 0 else args.lr  # what the warm-up climbs to
        for batch in loader:
            elapsed = time.monotonic() - started
            # Stop before the clock runs out, keeping time for one validation pass after it.
            if elapsed + last_validation_s > train_budget_s:
                out_of_time = True
                break
            progress = min(1.0, max(step / cosine_steps, elapsed / max(cosine_budget_s, 1.0)))
            if step < warmup_steps:
                lr = peak_lr * (step + 1) / warmup_steps
            elif averaging:
                lr = average_lr
            else:
                lr = args.lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            outputs = model(_input_images(batch, device, train_size))
            labels = scaled_labels(batch["seg"].to(device), train_size)
            loss, parts = criterion(outputs, labels, batch["plane"].to(device),
                                    batch["regression"].to(device), batch["regression_mask"].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            batches += 1
            for key, value in {"loss": loss.item(), **parts}.items():
                sums[key] = sums.get(key, 0.0) + value
        if batches:
            epochs_done += 1
            if averaging and not out_of_time:  # only whole epochs join the average
                average = _add_to_average(average, model, len(averaged_epochs))
                averaged_epochs.append(epoch)
            validation_start = time.monotonic()
            metrics = evaluate(model, val_set, device, input_size=train_size)
            last_validation_s = time.monotonic() - validation_start
            log({"event": "epoch", "epoch": epoch, "steps": step, "lr": round(lr, 6),
                 "train_s": round(validation_start - epoch_start, 1), "val_s": round(last_validation_s, 1),
                 **{f"train_{k}": round(v / batches, 4) for k, v in sums.items()},
                 "log_vars": [round(float(v), 3) for v in criterion.log_vars.detach().cpu()],
                 "val": {k: v for k, v in metrics.items() if k != "plane_accuracy_per_class"}})
            better = metrics["score"] is not None and metrics["score"] > best_score
            if args.select == "last" or better:
                best_score, best_metrics, best_epoch = metrics["score"], metrics, epoch
                torch.save({"model": {k: v.cpu() for k, v in model.state_dict().items()}, "model_args": model_args,
                            "epoch": epoch, "metrics": metrics}, run_dir / "best.pt")
            save_resume_state(resume_path, {
                "argv": run_arguments, "epoch": epoch, "elapsed_s": time.monotonic() - started,
                "model": model.state_dict(), "criterion": criterion.state_dict(), "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                "numpy_rng": np.random.get_state(), "python_rng": random.getstate(),
                "best_score": best_score, "best_metrics": best_metrics, "best_epoch": best_epoch, "step": step,
                "epochs_done": epochs_done, "last_validation_s": last_validation_s,
                "average": average, "averaged_epochs": averaged_epochs})
        if out_of_time:
            log({"event": "budget", "message": f"wall-clock budget reached after {epochs_done} epochs"})
            break

    if best_metrics is None:
        raise SystemExit("no epoch completed within the budget; raise --minutes")
    if args.average_epochs and not averaged_epochs:  # the epochs trained are kept, as without averaging
        log({"event": "budget", "message": "no averaged epoch completed within the budget; the epoch "
                                           f"selected by --select {args.select} is kept"})
    if averaged_epochs:
        train_set.set_epoch(args.epochs)  # augmented training items, as the weights saw them
        model = averaged_network(model, average, loader, device, train_size)
        best_metrics, best_epoch = evaluate(model, val_set, device, input_size=train_size), averaged_epochs[-1]
        log({"event": "averaged", "epochs": averaged_epochs, "val": best_metrics})
        torch.save({"model": {k: v.cpu() for k, v in model.state_dict().items()}, "model_args": model_args,
                    "epoch": best_epoch, "averaged_epochs": averaged_epochs, "metrics": best_metrics},
                   run_dir / "best.pt")
    model, checkpoint = load_checkpoint(run_dir / "best.pt")
    training = {"command": command, "seed": args.seed, "epochs": epochs_done, "best_epoch": best_epoch,
                "selected_by": (f"weights averaged over epochs {averaged_epochs[0]}-{averaged_epochs[-1]}" if averaged_epochs
                                else "last epoch" if args.select == "last" else "best mean Dice on the validation split"),
                "minutes": args.minutes, "device": device.type, "torch": torch.__version__.split("+")[0],
                "batch_size": args.batch_size, "lr": args.lr, "task": args.task}
    if train_size is not None:
        training["train_size"] = train_size
    if args.init is not None:
        training["initialised_from"] = str(args.init)
    export_info = {"name": args.name, "version": args.version, "placeholder": args.placeholder, "cases": cases,
                   "training": training, "metrics": {"val": best_metrics}, "task": args.task}
    checkpoint["export"] = export_info
    torch.save(checkpoint, run_dir / "best.pt")
    log({"event": "best", "epoch": best_epoch, "val": best_metrics})
    if not args.no_export:
        export_model(model, args.out, **export_info)
        if args.attach_to:
            # the engine reads "head_biometry" and uses this model on the frames the main model classes that plane
            update_manifest(args.out / f"{args.attach_to}.json", "head_biometry",
                            {"model": args.name, "plane": BIOMETRY_PLANE})
            log({"event": "attached", "main_model": args.attach_to, "head_model": args.name})
    log({"event": "done", "minutes": round((time.monotonic() - started) / 60.0, 2)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
