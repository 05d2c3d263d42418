"""The ``workstation`` command: the window, and every operation of the app headless.

``workstation [FILE...]`` starts the window (on FILE, else on the welcome page that offers the
demo cine); ``workstation --screenshot OUT.png [FILE]`` saves a screenshot of it offscreen;
``workstation --startup-time`` times the window's start to its first paint.
Subcommands analyse, measure, evaluate and benchmark without Qt (Qt is imported only for
the window). Errors a user can fix (a bad file, a refused model) print one line
and exit 2; they never show a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from workstation import __version__
from workstation.errors import InputError, WorkstationError
from workstation.json_output import emit_json

EXIT_USER_ERROR = 2


class _Progress:
    """A one-line progress counter on stderr, for long cines and datasets."""

    def __init__(self, label: str, quiet: bool):
        self.label, self.quiet, self.last = label, quiet, -1

    def __call__(self, done: int, total: int) -> None:
        if self.quiet or total < 2:
            return
        percent = int(100 * done / total)
        if percent != self.last and (percent % 5 == 0 or done == total):
            self.last = percent
            end = "\n" if done == total else "\r"
            sys.stderr.write(f"{self.label}: {done}/{total} frames ({percent}%){end}")
            sys.stderr.flush()


def cmd_analyze(args) -> int:
    from workstation.inference.engine import load_model
    from workstation.inference.pipeline import analyze_cine
    from workstation.io import load

    if args.exam is not None and args.files:
        raise InputError("give FILE... or --exam ID, not both")
    if args.exam is None and not args.files:
        raise InputError("give a FILE to analyse, or --exam ID for an exam of the records")
    if args.exam is not None:
        cines = [_exam_cine(args)]
    else:
        # Open every file first (cheap: frames decode lazily) so a bad one fails before minutes of work.
        cines = [load(path, mm_per_px=args.mm_per_px) for path in args.files]
    model = load_model(args.model, device=args.device)
    if model.manifest.placeholder:
        print(f"warning: model {model.manifest.label} is a PLACEHOLDER: its values are not clinically meaningful",
              file=sys.stderr)
    results = [analyze_cine(cine, model, progress=_Progress(cine.source.name, args.quiet), tta=not args.no_tta)
               for cine in cines]
    emit_json(results[0] if len(results) == 1 else results, args.json)
    return 0


def _exam_cine(args):
    """``analyze --exam ID``: the exam's stored scan with the calibration in force on it (a manual one set on the
    exam, else the file's; ``--mm-per-px`` still overrides both). The records are read, never changed."""
    from workstation.io.loader import with_manual_calibration
    from workstation.records import Records, load_exam

    with Records(args.data_dir) as records:
        cine = load_exam(records, args.exam)
    return with_manual_calibration(cine, args.mm_per_px)


def labelmap_frame_class(labels) -> str:
    """A label map's frame class, for the analysis pipeline's plane rule: with the PS in it, a transperineal view
    (standard plane with the head, else one structure); the head alone, an axial head plane (an HC18-style mask);
    neither, no anatomy."""
    from workstation.inference.planes import BIOMETRY_PLANE, NO_ANATOMY, ONE_STRUCTURE, STANDARD_PLANE
    from workstation.measure.regions import FH_LABEL, PS_LABEL

    ps, fh = bool((labels == PS_LABEL).any()), bool((labels == FH_LABEL).any())
    if ps:
        return STANDARD_PLANE if fh else ONE_STRUCTURE
    return BIOMETRY_PLANE if fh else NO_ANATOMY


def cmd_measure(args) -> int:
    """The label map's values, with the plane rule the analysis pipeline applies to a frame of its class
    (``apply_plane_policy``): head biometry on a head-only map, AoP and HSD where the PS is in it."""
    from workstation.calibration import Calibration
    from workstation.inference.pipeline import apply_plane_policy
    from workstation.measure import load_labelmap, measure_labelmap
    from workstation.measure.measurements import IN_LABEL_MAP

    labels = load_labelmap(args.labelmap)
    calibration = Calibration.manual_mm_per_px(args.mm_per_px) if args.mm_per_px else None
    measured = measure_labelmap(labels, calibration, found=IN_LABEL_MAP).to_json()  # "no PS in the label map"
    measured["frame_class"] = frame_class = labelmap_frame_class(labels)
    emit_json(apply_plane_policy(measured, frame_class), args.json)
    return 0


def cmd_evaluate(args) -> int:
    from workstation.evaluate import evaluate, format_summary
    from workstation.inference.engine import load_model

    model = load_model(args.model, device=args.device)
    result = evaluate(model, args.dataset, args.dir, split=args.split, limit=args.limit,
                      progress=_Progress(f"evaluate {args.dataset}", args.quiet))
    if not args.cases:
        result.pop("cases", None)
    emit_json(result, args.json)
    if args.json and not args.quiet:  # the JSON went to a file: the figures, readable, on the terminal
        print(format_summary(result))
    return 0


def cmd_bench(args) -> int:
    if args.gui:
        # The window's bench plays the demo with the shipped model; it has no use for the model's own options.
        ignored = [flag for flag, given in (("--model", args.model is not None), ("--device", args.device != "auto"),
                                            ("--threads", args.threads is not None), ("--repeats", args.repeats is not None),
                                            ("--compare-siglip", args.compare_siglip)) if given]
        if ignored:
            raise InputError(f"bench --gui measures the window with the shipped model; it takes --frames and --json, "
                             f"not {', '.join(ignored)}")
        from workstation.gui.bench import main as gui_bench

        return gui_bench((["--json"] if args.json else []) + ([] if args.frames is None else ["--frames", str(args.frames)]))
    from workstation.bench import run_bench
    from workstation.inference.engine import load_model

    model = load_model(args.model, device=args.device, threads=args.threads)
    given = {key: value for key, value in (("repeats", args.repeats), ("n_frames", args.frames)) if value is not None}
    result = run_bench(model, compare_siglip=args.compare_siglip, **given)
    if args.json:
        emit_json(result, None)
    else:
        print(f"model          {model.manifest.label} ({result['device']}, {result['threads']} threads)")
        print(f"latency/frame  median {result['latency_ms']['median']:.2f} ms, p95 {result['latency_ms']['p95']:.2f} ms "
              f"at input {result['latency_input']}")
        if "head_biometry_latency_ms" in result:
            head = result["head_biometry_latency_ms"]
            print(f"head model     {model.head_specialist.manifest.label}: "
                  f"median {head['median']:.2f} ms, p95 {head['p95']:.2f} ms (axial head planes only)")
        print(f"cine           {result['cine_fps']:.1f} frames/s over {result['cine']['frames']} frames "
              f"{result['cine']['frame_shape']} (whole pipeline, test-time passes)")
        if "siglip_so400m" in result:
            siglip = result["siglip_so400m"]
            print(f"SigLIP so400m  median {siglip['median_ms']:.0f} ms at {siglip['input']} ({siglip['parameters_m']:.0f}M "
                  f"params, {siglip['runtime']}): {siglip['ratio_to_ours']:.0f}x our latency")
        print(f"peak memory    {result['peak_rss_mb']:.0f} MB RSS")
    return 0


def cmd_demo_cine(args) -> int:
    from workstation.synthetic import write_demo_cine

    path = write_demo_cine(args.out, n_frames=args.frames, seed=args.seed)
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workstation", description="Labor ward ultrasound workstation (AoP, HSD, HC).",
        epilog="The window: 'workstation [FILE ...]' opens it (on FILE, or on the welcome page that offers the demo "
               "cine); 'workstation --screenshot OUT.png [FILE]' opens it offscreen, analyses FILE (or the demo), "
               "saves a screenshot of the chosen frame and exits.")
    parser.add_argument("--version", action="version", version=f"workstation {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check this installation offline (model hash, decoders, analysis, report, window); "
                             "exit 0 only if every step passes")
    parser.add_argument("--startup-time", action="store_true",
                        help="start the window (offscreen when there is no display), wait for its first paint, print "
                             "the seconds since the process started, close it and exit 0")
    sub = parser.add_subparsers(dest="command")

    def model_options(p):
        p.add_argument("--model", default=None, help="model name or manifest path (default: the shipped model)")
        p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"), help="ONNX Runtime device")

    p = sub.add_parser("analyze", help="analyse scans frame by frame (AoP, HSD, plane, uncertainty)")
    p.add_argument("files", nargs="*", help="DICOM, video, image files or folders of images")
    p.add_argument("--exam", type=int, help="instead of files: an exam of the records, its stored scan analysed with "
                                            "the calibration in force on it (a manual one set on the exam, else the "
                                            "file's); nothing is saved")
    p.add_argument("--data-dir", default=None,
                   help="with --exam: the data folder holding records/ (default: the per-user folder or "
                        "WORKSTATION_DATA_DIR)")
    p.add_argument("--json", metavar="OUT", help="write JSON here instead of stdout")
    p.add_argument("--mm-per-px", type=float, help="manual calibration, overriding what the file (or exam) says")
    p.add_argument("--no-tta", action="store_true",
                   help="skip the test-time passes (mirrored, turned): about twice as fast, but no calibrated uncertainty")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    model_options(p)
    p.set_defaults(run=cmd_analyze)

    p = sub.add_parser(
        "measure", help="AoP and HSD, or HC, BPD, OFD and GA, from a label map (0 bg, 1 PS, 2 FH)",
        description="Measures a label map (PNG: 0 background, 1 pubic symphysis, 2 fetal head) as the analysis "
                    "measures a frame, by the same plane rule: a map with the PS in it is a transperineal view, so it "
                    "gives AoP and HSD, and its HC, BPD, OFD and GA are withheld with the reason (head biometry is "
                    "taken on an axial head plane); a map with the head alone is an axial head plane and gives HC, "
                    "BPD, OFD and GA (Hadlock). An HC18 mask (head = 1) needs its head written as 2. JSON: the values, "
                    "'frame_class', 'reasons' for each absent value, the geometry.")
    p.add_argument("labelmap")
    p.add_argument("--mm-per-px", type=float, help="pixel size in mm, for mm values")
    p.add_argument("--json", metavar="OUT")
    p.set_defaults(run=cmd_measure)

    p = sub.add_parser("evaluate", help="Dice, HD95, AoP and HC error of the model on a labelled dataset")
    p.add_argument("--dataset", required=True, choices=("psfhs", "hc18"))
    p.add_argument("dir")
    p.add_argument("--split", default="val", choices=("val", "train", "all"),
                   help="which part of the fixed split to score (default val: the model trained on the rest)")
    p.add_argument("--limit", type=int, help="score only the first N cases")
    p.add_argument("--cases", action="store_true", help="include per-case rows")
    p.add_argument("--json", metavar="OUT")
    p.add_argument("--quiet", action="store_true")
    model_options(p)
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("bench", help="latency, cine frames per second, peak memory")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--repeats", type=int, default=None, help="model runs timed (default 100)")
    p.add_argument("--frames", type=int, default=None, help="frames of the synthetic cine (default 120; with --gui 48)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--compare-siglip", action="store_true",
                   help="also time a SigLIP so400m-sized encoder at 448x448 (needs torch and transformers)")
    p.add_argument("--gui", action="store_true",
                   help="instead: the window's longest UI stall and display frame rate while it analyses the demo")
    model_options(p)
    p.set_defaults(run=cmd_bench)

    p = sub.add_parser("demo-cine", help="write the project's synthetic transperineal DICOM cine")
    p.add_argument("out")
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_demo_cine)

    from workstation.records.cli import register as register_records_commands

    register_records_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_decoder_diagnostics()
    parser = build_parser()
    if _opens_window(argv, parser):
        return run_window(argv)
    args = parser.parse_args(argv)
    if args.self_test:
        from workstation.selftest import run_self_test

        return run_self_test()
    if args.startup_time:
        from workstation.gui.app import main as window_main

        return window_main(startup_time=True)
    if args.command is None:
        return run_window([])
    try:
        return args.run(args)
    except WorkstationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ValueError as exc:  # e.g. a manual calibration out of range
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # an output that cannot be written: a missing folder, a full or read-only disk
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot write or read{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130


def _quiet_decoder_diagnostics() -> None:
    """Keep the decoders' own chatter about a damaged file off the terminal.

    A damaged scan already ends in one clear line (``InputError``); pydicom's warnings about the
    same damage (it logs them to the ``pydicom`` logger as well) and the lines FFmpeg writes
    straight to stderr would only bury it. FFmpeg reads the variable when OpenCV first uses it;
    a maintainer who sets ``OPENCV_FFMPEG_LOGLEVEL`` keeps their own level.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")


def _opens_window(argv: list[str], parser: argparse.ArgumentParser) -> bool:
    """``workstation FILE...`` or ``workstation --screenshot ...``: the window, not a subcommand."""
    if not argv:
        return False  # the plain parser handles it (and --self-test, --startup-time, --version, --help)
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    first = argv[0]
    return first == "--screenshot" or first.startswith("--screenshot=") or (
        not first.startswith("-") and first not in subcommands)


def run_window(argv: list[str]) -> int:
    """Open the window on FILE(s), or take a screenshot; Qt is imported only here."""
    parser = argparse.ArgumentParser(prog="workstation", description="Open the workstation window.")
    parser.add_argument("files", nargs="*", help="scans to open (DICOM, video, images, a folder of images)")
    parser.add_argument("--screenshot", metavar="OUT.png",
                        help="offscreen: open FILE (or the demo), wait for the analysis, save the window, exit")
    args = parser.parse_args(argv)
    missing = [f for f in args.files if not Path(f).exists()]
    if missing:
        print(f"error: {missing[0]}: no such file or folder", file=sys.stderr)
        return EXIT_USER_ERROR
    from workstation.gui.app import main as window_main

    return window_main(args.files, screenshot=args.screenshot)
