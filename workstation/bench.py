"""Speed figures: per-frame model latency at the input size, whole-pipeline cine throughput, peak memory.

Targets live here as printed figures, not in timed tests (a loaded CI machine would
make a timed test flaky without telling anyone anything).
"""
from __future__ import annotations

import resource
import sys
import time

import numpy as np

from workstation.errors import WorkstationError
from workstation.inference.engine import Model
from workstation.inference.pipeline import iter_frame_results


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def time_calls(call, repeats: int = 100, warmup: int = 10) -> dict:
    """Median and p95 wall time in ms of ``call()`` over ``repeats`` runs after ``warmup`` untimed ones: the one
    timing loop behind every latency figure (bench, the SigLIP comparison, the export's card line)."""
    for _ in range(warmup):
        call()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        timings.append((time.perf_counter() - start) * 1000.0)
    return {"median": round(float(np.median(timings)), 3), "p95": round(float(np.percentile(timings, 95)), 3),
            "repeats": repeats}


def model_latency_ms(model: Model, repeats: int = 100, warmup: int = 10) -> dict:
    spec = model.manifest.input_spec
    batch = np.random.default_rng(0).standard_normal((1, spec.channels, spec.height, spec.width)).astype(np.float32)
    return {**time_calls(lambda: model.run_inputs(batch), repeats, warmup),
            "input": [1, spec.channels, spec.height, spec.width]}


def cine_fps(model: Model, n_frames: int = 120, tta: bool = True) -> dict:
    """Frames per second of the whole analysis (model, TTA, measurements, uncertainty) over a synthetic cine."""
    from workstation.io import Cine  # the synthetic cine needs no file round trip
    from workstation.synthetic import make_transperineal_cine

    synthetic = make_transperineal_cine(n_frames=n_frames, seed=1)
    cine = Cine.from_arrays(synthetic.frames, frame_time_ms=synthetic.frame_time_ms, source="synthetic-bench")
    start = time.perf_counter()
    count = sum(1 for _ in iter_frame_results(cine, model, tta=tta))
    elapsed = time.perf_counter() - start
    return {"fps": round(count / elapsed, 2), "frames": count, "frame_shape": list(cine.frame_shape),
            "tta": tta}


def run_bench(model: Model, repeats: int = 100, n_frames: int = 120, compare_siglip: bool = False) -> dict:
    latency = model_latency_ms(model, repeats=repeats)
    cine = cine_fps(model, n_frames=n_frames)
    result = {"latency_ms": {"median": latency["median"], "p95": latency["p95"]}, "latency_input": latency["input"],
              "cine_fps": cine["fps"], "cine": cine, "peak_rss_mb": peak_rss_mb(), "device": model.device,
              "threads": model.threads, "model": model.describe()}
    if model.head_specialist is not None:  # runs only on axial head planes, so it is timed on its own
        head = model_latency_ms(model.head_specialist, repeats=repeats)
        result["head_biometry_latency_ms"] = {"median": head["median"], "p95": head["p95"]}
    if compare_siglip:
        siglip = siglip_so400m_latency_ms(threads=model.threads)
        siglip["ratio_to_ours"] = round(siglip["median_ms"] / latency["median"], 1)
        result["siglip_so400m"] = siglip
        result["peak_rss_mb"] = peak_rss_mb()
    return result


def siglip_so400m_latency_ms(repeats: int = 3, threads: int = 2, image_size: int = 448) -> dict:
    """Latency of a SigLIP so400m-sized vision encoder (random weights) in PyTorch, for scale.

    The size LaborView-class foundation encoders have: 27 layers, width 1152, MLP 4304, 16 heads,
    14-px patches (about 430M parameters). Needs the ``train`` extra plus ``transformers``.
    """
    try:
        import torch
        from transformers import SiglipVisionConfig, SiglipVisionModel
    except ImportError as exc:
        raise WorkstationError(f"the SigLIP comparison needs torch and transformers ({exc.name} is missing): "
                               "pip install -e '.[train]' transformers") from None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                                patch_size=14, image_size=image_size)
    model = SiglipVisionModel(config).eval()
    pixels = torch.randn(1, 3, image_size, image_size)
    with torch.inference_mode():
        timed = time_calls(lambda: model(pixel_values=pixels), repeats, warmup=1)
    return {"median_ms": round(timed["median"], 1), "input": [1, 3, image_size, image_size],
            "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1), "threads": threads,
            "runtime": f"torch {torch.__version__}", "repeats": repeats}
