"""ONNX export of the multi-task network, checked against torch, with its JSON manifest and model card.

The manifest (``schema: 1``) is the contract :mod:`workstation.inference.manifest` reads: input
name/shape/normalisation, output tensor names, plane classes, regression scale, and the sha256
of the ONNX bytes (the engine refuses a file whose hash differs).

Re-export a checkpoint without training::

    python -m workstation.training.export --checkpoint runs/psfh-multitask/best.pt --out models/
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
import warnings
from pathlib import Path

import numpy as np
import torch

from workstation.inference.manifest import file_sha256
from workstation.paths import replacing
from workstation.training.data import HC18_OUTLINE_WIDTH_INPUT_PX, INPUT_SPEC, SPLIT_RULE
from workstation.training.model import OUTPUT_NAMES, PLANE_CLASSES, REGRESSION_SCALE, PSFHMultiTaskNet, count_parameters

OPSET = 17
INPUT_NAME = "image"
MAX_ABS_DIFF = 1e-3  # ORT vs torch on seg logits; float32 kernels differ by ~1e-5, a real mismatch is far larger

DATASETS = {
    "PSFHS": {"citation": "Chen et al., Scientific Data 11, 436 (2024), doi:10.1038/s41597-024-03266-4",
              "licence": "CC BY 4.0"},
    "HC18": {"citation": "van den Heuvel et al., PLoS ONE 13(8): e0200412 (2018)", "licence": "CC BY 4.0"},
}
MODEL_LICENCE = ("Weights: licensed with the workstation project. Trained on PSFHS and HC18 (both CC BY 4.0): "
                 "redistribution must keep the dataset attributions in training_data.")
INTENDED_USE = ("Decision support for trained sonographers/midwives on intrapartum transperineal ultrasound: segment the "
                "pubic symphysis and fetal head, grade the plane, estimate AoP and HSD, each shown with its uncertainty "
                "for a person to review. Not a diagnostic device; not validated for clinical decisions.")
HEAD_INTENDED_USE = ("Head-biometry specialist: outlines the fetal skull on frames that the main model classes as an "
                     "axial head plane, for HC, BPD and Hadlock gestational age, each shown for a person to review. "
                     "It does not grade planes and is not used on transperineal frames. Not a diagnostic device; not "
                     "validated for clinical decisions.")


def export_onnx(model: torch.nn.Module, path: Path, size: int = INPUT_SPEC.height) -> Path:
    """Write an opset-17 ONNX with a dynamic batch axis (the TorchScript exporter: stable for this plain CNN)."""
    model = model.eval().cpu()
    dummy = torch.zeros(1, INPUT_SPEC.channels, size, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {INPUT_NAME: {0: "N"}} | {name: {0: "N"} for name in OUTPUT_NAMES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (dummy,), str(path), dynamo=False, opset_version=OPSET, input_names=[INPUT_NAME],
                          output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic, do_constant_folding=True)
    return path


def ort_session(path: Path, threads: int = 2):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def verify_onnx(model: torch.nn.Module, path: Path, batch: int = 2, seed: int = 0) -> float:
    """Max |ORT - torch| over all outputs on a random batch (also proves the batch axis is dynamic)."""
    model = model.eval().cpu()
    x = torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (batch, INPUT_SPEC.channels,
                                                                      INPUT_SPEC.height, INPUT_SPEC.width))
                         .astype(np.float32))
    with torch.no_grad():
        expected = [t.numpy() for t in model(x)]
    got = ort_session(path).run(list(OUTPUT_NAMES), {INPUT_NAME: x.numpy()})
    diff = max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
    if diff > MAX_ABS_DIFF:
        raise RuntimeError(f"ONNX Runtime output differs from torch by {diff:.2e} (> {MAX_ABS_DIFF}) for {path}")
    return diff


def onnx_latency_ms(path: Path, threads: int = 2, runs: int = 50, warmup: int = 10) -> dict:
    """Median and p95 ms per 1x1x256x256 frame in ONNX Runtime on the CPU, timed as ``workstation bench`` times."""
    from workstation.bench import time_calls

    session = ort_session(path, threads)
    shape = (1, INPUT_SPEC.channels, INPUT_SPEC.height, INPUT_SPEC.width)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    timed = time_calls(lambda: session.run(None, {INPUT_NAME: x}), runs, warmup)
    return {"median_ms": round(timed["median"], 2), "p95_ms": round(timed["p95"], 2), "threads": threads, "batch": 1}


def build_manifest(onnx_path: Path, *, name: str, version: str, placeholder: bool, cases: dict, training: dict,
                   metrics: dict, created: str | None = None, task: str = "multitask") -> dict:
    """The schema-1 manifest. ``cases``: {"PSFHS": (train, val), "HC18": (train, val)}.

    A ``head`` task model (the head-biometry specialist) declares only its segmentation: its plane and
    regression heads saw HC18 alone and mean nothing, so no reader may use them."""
    outputs = {"segmentation": {"name": OUTPUT_NAMES[0]},
               "plane": {"name": OUTPUT_NAMES[1], "classes": list(PLANE_CLASSES)},
               "regression": {"name": OUTPUT_NAMES[2], "fields": ["aop_deg", "hsd_px"],
                              "scale": list(REGRESSION_SCALE), "hsd_units": "input_px"}}
    if int(cases.get("HC18", (0, 0))[0]):  # its head edge learnt HC18's masks, filled from drawn outlines
        outputs["segmentation"]["head_outline_width_input_px"] = HC18_OUTLINE_WIDTH_INPUT_PX
    if task == "head":
        outputs = {"segmentation": outputs["segmentation"]}
    manifest = {
        "schema": 1, "name": name, "version": version, "placeholder": bool(placeholder),
        "file": onnx_path.name, "sha256": file_sha256(onnx_path), "size_bytes": onnx_path.stat().st_size,
        "input": {"name": INPUT_NAME, "shape": [None, INPUT_SPEC.channels, INPUT_SPEC.height, INPUT_SPEC.width],
                  "dtype": "float32", "channels": INPUT_SPEC.channels, "resize": INPUT_SPEC.resize,
                  "normalisation": {"scale": INPUT_SPEC.scale, "mean": INPUT_SPEC.mean, "std": INPUT_SPEC.std}},
        "class_map": {"0": "background", "1": "pubic_symphysis", "2": "fetal_head"},
        "outputs": outputs,
        "training_data": [{"name": dataset, **DATASETS[dataset], "cases_train": int(cases.get(dataset, (0, 0))[0]),
                           "cases_val": int(cases.get(dataset, (0, 0))[1])} for dataset in DATASETS],
        "split_rule": SPLIT_RULE,
        "training": training,
        "metrics": metrics,
        "licence": MODEL_LICENCE,
        "created": created or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "intended_use": HEAD_INTENDED_USE if task == "head" else INTENDED_USE,
    }
    if task == "head":
        manifest["role"] = "head_biometry"
    return manifest


def _fmt(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _card_sections(manifest: dict, params: int, latency_line: str) -> dict:
    """The parts of the model card that differ between the main (multi-task) model and a head-biometry model."""
    val = manifest["metrics"].get("val", {})
    if manifest.get("role") == "head_biometry":
        return {
            "title": f"{manifest['name']} {manifest['version']} (head-biometry specialist)",
            "model": f"""The project's network (`workstation.training.model`, {params:,} parameters) trained for the head alone: only
`seg_logits` is declared (background / pubic symphysis / fetal head; its plane and regression outputs are not used).
The main model's manifest names this one under `head_biometry`; the engine runs it only on frames the main model
classes as axial head planes, and the frame's JSON says so (`segmented_by`).
Input `image` (N,1,256,256) as the main model. File `{manifest['file']}`, {manifest['size_bytes']:,} bytes,
sha256 `{manifest['sha256']}`. Latency: {latency_line}.""",
            "data_note": "",
            "metrics": f"""## Validation metrics (HC18 validation split, un-augmented)
- Dice fetal head on HC18 axial planes {_fmt(val.get('dice_fh_hc18'))}
- HC error: `workstation evaluate --dataset hc18 ../shared/data/hc18` (with the main model naming this one).""",
            "limitations": """- HC18 comes from one hospital's scanners; other machines and presets are untested.
- HC18 masks are filled outlines, whose edge lies half the line's width outside the reference ellipse; the model
  learnt that edge, so `workstation analyze` and the evaluation move the fitted ellipse in by half the width
  (`head_outline_width_input_px` in the manifest).""",
        }
    return {
        "title": f"{manifest['name']} {manifest['version']}",
        "model": f"""One light encoder-decoder (strided stem, depthwise-separable U-Net, {params:,} parameters), three heads:
`seg_logits` (N,3,256,256: background / pubic symphysis / fetal head), `plane_logits` (N,4: {", ".join(PLANE_CLASSES)}),
`aop_hsd` (N,2: [AoP/180, HSD/256], multiply by `scale` for degrees and input pixels).
Input `image` (N,1,256,256): grey frame letterboxed to 256x256, (p/255-0.5)/0.5
(`workstation.inference.preprocess`). File `{manifest['file']}`, {manifest['size_bytes']:,} bytes, sha256 `{manifest['sha256']}`.
Latency: {latency_line}.""",
        "data_note": """
Frame classes are weak labels derived in `workstation/training/data.py` (PSFHS = standard plane; PSFHS with one
structure cropped or inpainted away = one structure; HC18 = not transperineal; blank/speckle/blurred = no anatomy).
AoP/HSD targets come from the reference label maps through `workstation.measure`.""",
        "metrics": f"""## Validation metrics (validation split, un-augmented)
- Dice pubic symphysis {_fmt(val.get('dice_ps'))}, fetal head {_fmt(val.get('dice_fh'))} (PSFHS, mean per image)
- Dice fetal head on HC18 axial planes {_fmt(val.get('dice_fh_hc18'))}
- AoP MAE from the predicted masks {_fmt(val.get('aop_mae_deg'), 2)} deg (geometry refused on
  {val.get('aop_refused', 'n/a')} of {val.get('cases_psfhs', 'n/a')} predicted masks); from the regression head
  {_fmt(val.get('aop_mae_deg_regression'), 2)} deg; HSD MAE (regression) {_fmt(val.get('hsd_mae_px_regression'), 2)} input px
- Plane accuracy {_fmt(val.get('plane_accuracy'))} (PSFHS, HC18 and synthetic frames); per class:
  {", ".join(f"{k} {_fmt(v)}" for k, v in (val.get('plane_accuracy_per_class') or {}).items()) or "n/a"}

Project targets for the real model: Dice FH >= 0.96, PS >= 0.91, AoP MAE <= 4 deg, <= 15 ms per frame.""",
        "limitations": """- PSFHS comes from a few machines of one research group; other scanners, presets and probe positions are untested.
- Frame classes are derived, not graded by people; `one_structure` and `no_anatomy` frames are partly synthetic.
- HSD is in input pixels; mm need a trustworthy calibration, which the workstation handles separately.
- HC18 masks are filled outlines (slightly larger heads than the reference ellipses).""",
    }


def model_card(manifest: dict, *, params: int, latency: dict | None) -> str:
    training = manifest["training"]
    status = ("**PLACEHOLDER.** Trained for a few minutes only so the pipeline runs end to end; its numbers are "
              "far from the project targets. Every output of the workstation marks it as a placeholder. Do not use "
              "it to judge the method, and never for patient care.\n" if manifest["placeholder"] else "")
    data_lines = "\n".join(f"- {d['name']} ({d['licence']}): {d['citation']}; {d['cases_train']} train / "
                           f"{d['cases_val']} val cases" for d in manifest["training_data"])
    latency_line = (f"{latency['median_ms']} ms median (p95 {latency['p95_ms']} ms) per 256x256 frame, batch 1, "
                    f"ONNX Runtime CPU, {latency['threads']} threads" if latency else "not measured")
    part = _card_sections(manifest, params, latency_line)
    # Older manifests do not record the starting weights, so their absence says nothing either way.
    notes = [f"Initialised from `{training['initialised_from']}`." if training.get("initialised_from") else "",
             f"Note: {training['stopped_early']}." if training.get("stopped_early") else ""]
    return f"""# {part['title']}

{status}
## Intended use
{manifest['intended_use']}

## Model
{part['model']}

## Data
{data_lines}

Split: {manifest['split_rule']}.{part['data_note']}

{part['metrics']}

## Training
`{training['command']}` - seed {training.get('seed', 'n/a')}, {training['epochs']} epochs (kept: {training.get('best_epoch', 'n/a')}),
{training.get('minutes', 'n/a')} min budget, device {training['device']}, torch {training['torch']}.
{" ".join(n for n in notes if n)}

## Limitations
{part['limitations']}

## Licence
{manifest['licence']}
"""


def update_manifest(path: Path, key: str, value) -> None:
    """Set one key of a written manifest (the uncertainty calibration, the head-biometry model it names), written
    whole or not at all; the ONNX file and its hash are untouched."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest[key] = value
    with replacing(path) as partial:
        partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def export_model(model: torch.nn.Module, out_dir: Path, *, name: str, version: str, placeholder: bool, cases: dict,
                 training: dict, metrics: dict, measure_latency: bool = True, task: str = "multitask") -> dict:
    """Export, verify against torch, write ``<name>.onnx``, ``<name>.json`` and ``<name>.md``; returns the manifest."""
    out_dir = Path(out_dir)
    onnx_path = export_onnx(model, out_dir / f"{name}.onnx")
    diff = verify_onnx(model, onnx_path)
    latency = onnx_latency_ms(onnx_path) if measure_latency else None
    manifest = build_manifest(onnx_path, name=name, version=version, placeholder=placeholder, cases=cases,
                              training=training, metrics=metrics, task=task)
    (out_dir / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (out_dir / f"{name}.md").write_text(model_card(manifest, params=count_parameters(model), latency=latency),
                                        encoding="utf-8")
    manifest_info = {"max_abs_diff_vs_torch": diff, "latency": latency}
    print(json.dumps({"exported": str(onnx_path), **manifest_info}))
    return manifest


def load_checkpoint(path: Path) -> tuple[PSFHMultiTaskNet, dict]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    model = PSFHMultiTaskNet(**checkpoint.get("model_args", {}))
    model.load_state_dict(checkpoint["model"])
    return model.eval(), checkpoint


def model_from_onnx(path: Path, calibration: torch.Tensor | None = None) -> PSFHMultiTaskNet:
    """A trainable network holding the weights of an ONNX file this module exported, e.g. a shipped model whose
    ``runs/`` checkpoint is gone.

    The exporter folded each BatchNorm into the convolution before it, so every fused convolution gets its
    BatchNorm back: with statistics measured on ``calibration`` (a batch of normalised inputs) where given, and
    an identity otherwise, and with scale and shift set so that the network in eval mode computes what the file
    does. The statistics matter only to training: with them a train-mode batch is normalised about as the
    frozen file would be, so a fine-tune starts where the shipped model is.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    conv_nodes = [node for node in graph.node if node.op_type == "Conv"]
    convs = {_module_path_of(node.output[0]): node for node in conv_nodes}
    if len(convs) != len(conv_nodes):  # our network calls each convolution once
        raise ValueError(f"{path}: two convolutions share a layer name: not a {PSFHMultiTaskNet.__name__} export")
    model = PSFHMultiTaskNet(widths=_widths_of(convs, weights)).eval()
    modules = dict(model.named_modules())
    state = model.state_dict()
    fused_bias: dict[str, torch.Tensor] = {}  # BatchNorm module path -> the bias folded into its convolution
    for conv_path, node in convs.items():
        if not isinstance(modules.get(conv_path), torch.nn.Conv2d):
            raise ValueError(f"{path}: convolution {node.output[0]} matches no layer of {type(model).__name__}")
        state[f"{conv_path}.weight"] = weights[node.input[1]]
        parent, _, index = conv_path.rpartition(".")
        norm_path = f"{parent}.{int(index) + 1}" if index.isdigit() else ""
        if isinstance(modules.get(norm_path), torch.nn.BatchNorm2d):
            fused_bias[norm_path] = weights[node.input[2]]
        else:
            state[f"{conv_path}.bias"] = weights[node.input[2]]
    for node in graph.node:
        if node.op_type == "Gemm":  # Linear layers keep their names
            for name in node.input[1:]:
                state[name] = weights[name]
    missing = [name for name, module in modules.items() if isinstance(module, torch.nn.BatchNorm2d)
               and name not in fused_bias]
    if missing:
        raise ValueError(f"{path}: no fused convolution for {', '.join(missing)}: not a {type(model).__name__} export")
    for norm_path, bias in fused_bias.items():
        eps = modules[norm_path].eps
        state[f"{norm_path}.running_mean"] = torch.zeros_like(bias)
        state[f"{norm_path}.running_var"] = torch.ones_like(bias)
        state[f"{norm_path}.weight"] = torch.full_like(bias, float(np.sqrt(1.0 + eps)))
        state[f"{norm_path}.bias"] = bias
    try:
        model.load_state_dict(state)
    except RuntimeError as mismatch:  # same layer names, other sizes (e.g. another input size)
        raise ValueError(f"{path}: its weights do not fit {type(model).__name__}: {mismatch}") from None
    if calibration is not None:
        _restore_norm_statistics(model, fused_bias, calibration)
    return model


def _widths_of(convs: dict, weights: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """The network's channels per resolution, read off the output channels of the stem and of each encoder
    stage's first pointwise convolution (a widened export is not the default width). ``convs``: the file's
    convolution nodes by module path."""
    out_channels = {conv_path: int(weights[node.input[1]].shape[0])
                    for conv_path, node in convs.items() if node.input[1] in weights}
    layers = ("stem.0.0", "enc1.down.pointwise.0", "enc2.down.pointwise.0", "enc3.down.pointwise.0",
              "enc4.down.pointwise.0")
    missing = [layer for layer in layers if layer not in out_channels]
    if missing:
        raise ValueError(f"no convolution {', '.join(missing)} in the file: not a {PSFHMultiTaskNet.__name__} export")
    return tuple(out_channels[layer] for layer in layers)


def _module_path_of(output_name: str) -> str:
    """The module that wrote an exported tensor, from the exporter's scope name: each scope names a child of the
    one before, a Sequential's children repeating its name (/enc1/down/depthwise/depthwise.0/Conv_output_0 ->
    enc1.down.depthwise.0)."""
    path: list[str] = []
    for scope in output_name.strip("/").split("/")[:-1]:
        if path and scope.startswith(path[-1] + "."):
            path[-1] = scope
        else:
            path.append(scope)
    return ".".join(path)


@torch.no_grad()
def _restore_norm_statistics(model: PSFHMultiTaskNet, fused_bias: dict[str, torch.Tensor],
                             calibration: torch.Tensor) -> None:
    """Give each restored BatchNorm the mean and variance its input has on ``calibration``, keeping eval outputs:
    gamma = sqrt(var + eps) and beta = mean + fused bias undo exactly the normalisation they add."""
    modules = dict(model.named_modules())
    seen: dict[str, torch.Tensor] = {}
    hooks = [modules[name].register_forward_hook(lambda m, inputs, out, name=name: seen.__setitem__(name, inputs[0]))
             for name in fused_bias]
    try:
        model(calibration)
    finally:
        for hook in hooks:
            hook.remove()
    for name, bias in fused_bias.items():
        norm = modules[name]
        x = seen[name]
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
        norm.running_mean.copy_(mean)
        norm.running_var.copy_(var)
        norm.weight.copy_(torch.sqrt(var + norm.eps))
        norm.bias.copy_(mean + bias)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a best.pt written by workstation.training.train")
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--name", default=None, help="only for a run stopped before its own export")
    parser.add_argument("--version", default=None, help="only for a run stopped before its own export")
    parser.add_argument("--command", default=None, help="the training command, for the manifest of a stopped run")
    args = parser.parse_args(argv)
    model, checkpoint = load_checkpoint(args.checkpoint)
    info = checkpoint.get("export") or info_for_stopped_run(args.checkpoint, checkpoint, name=args.name,
                                                            version=args.version, command=args.command)
    export_model(model, args.out, **info)
    return 0


def info_for_stopped_run(checkpoint_path: Path, checkpoint: dict, *, name: str | None, version: str | None,
                         command: str | None) -> dict:
    """Manifest facts for a run that was stopped (killed, machine reclaimed) after saving a best epoch but
    before exporting: they are rebuilt from the run's own ``log.jsonl`` so that the model card says so."""
    if not (name and version):
        raise SystemExit(f"{checkpoint_path} was saved by a run that never finished; give --name and --version")
    log_path = Path(checkpoint_path).with_name("log.jsonl")
    records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    data = next(r for r in records if r.get("event") == "data")
    epochs = [r for r in records if r.get("event") == "epoch"]
    options = shlex.split(command or "")
    def option(flag: str):
        return options[options.index(flag) + 1] if flag in options[:-1] else None
    training = {"command": command or "unknown", "seed": option("--seed"), "minutes": option("--minutes"),
                "epochs": len(epochs), "best_epoch": checkpoint["epoch"],
                "stopped_early": f"the run was stopped after epoch {epochs[-1]['epoch']} (its log ends at "
                                 f"{epochs[-1]['t_s'] / 60:.0f} min) before its own export; exported from best.pt",
                "device": data.get("device"), "torch": torch.__version__.split("+")[0]}
    return {"name": name, "version": version, "placeholder": False,
            "cases": {k: tuple(v) for k, v in data["cases"].items()},
            "training": training, "metrics": {"val": checkpoint["metrics"]}}


if __name__ == "__main__":
    raise SystemExit(main())
