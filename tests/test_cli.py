"""The headless CLI, end to end: JSON contracts, progress, one-line errors, real data where present."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO_ROOT, shared_path
from fixtures_io import pydicom_test_file
from model_fixtures import build_tiny_onnx, write_manifest
from workstation.cli import main
from workstation.synthetic import make_transperineal_cine

pytest.importorskip("onnx")

MEASURE_KEYS = {"aop_deg", "hsd_px", "hsd_mm", "hc_px", "hc_mm", "bpd_mm", "ofd_mm", "ga_weeks", "geometry", "reasons"}
EVALUATE_KEYS = {"dataset", "n", "dice", "hd95_px", "aop_abs_error_deg", "hc_abs_error_mm"}


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    return str(write_manifest(build_tiny_onnx(folder / "tiny.onnx")))


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "workstation", *args], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT, timeout=300)


def test_demo_cine_then_analyze_through_the_real_entry_point(tmp_path, tiny_manifest):
    dcm = tmp_path / "demo.dcm"
    done = run_cli("demo-cine", str(dcm), "--frames", "8")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "a.json"
    done = run_cli("analyze", str(dcm), "--json", str(out), "--model", tiny_manifest, "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert "PLACEHOLDER" in done.stderr and "8/8 frames" in done.stderr
    result = json.loads(out.read_text())
    assert result["n_frames"] == 8 and len(result["frames"]) == 8
    assert result["calibration_source"] == "dicom_regions"
    assert result["frame_time_source"] in ("FrameTime", "CineRate")
    assert result["frames"][1]["time_s"] == pytest.approx(0.04)
    assert result["model"]["sha256"] and result["model"]["placeholder"] is True


def test_analyze_several_files_gives_a_list(tmp_path, tiny_manifest, capsys):
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), make_transperineal_cine(1, shape=(120, 160)).frames[0])
    assert main(["analyze", str(image), str(image), "--model", tiny_manifest, "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert isinstance(payload, list) and len(payload) == 2 and payload[0]["calibration_source"] == "none"


def test_an_output_that_cannot_be_written_is_one_line_and_an_earlier_file_stays(tmp_path, capsys):
    labels = make_transperineal_cine(1, seed=4).labels[0]
    path = tmp_path / "labels.png"
    cv2.imwrite(str(path), labels)
    missing = tmp_path / "no-such-folder" / "out.json"
    assert main(["measure", str(path), "--json", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write or read ") and str(missing.parent) in err and len(err.splitlines()) == 1
    # A write that fails midway keeps the earlier file whole and leaves no temporary behind.
    from workstation.paths import replacing

    earlier = tmp_path / "out.json"
    earlier.write_text('{"earlier": true}\n')
    with pytest.raises(RuntimeError):
        with replacing(earlier) as partial:
            partial.write_text('{"half')
            raise RuntimeError("disk full")
    assert earlier.read_text() == '{"earlier": true}\n' and sorted(p.name for p in tmp_path.iterdir()) == [
        "labels.png", "out.json"]
    assert main(["measure", str(path), "--json", str(earlier)]) == 0
    assert "aop_deg" in json.loads(earlier.read_text())


def test_measure_on_a_synthetic_label_map(tmp_path, capsys):
    labels = make_transperineal_cine(1, seed=4).labels[0]
    path = tmp_path / "labels.png"
    cv2.imwrite(str(path), labels)
    assert main(["measure", str(path), "--mm-per-px", "0.2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert MEASURE_KEYS <= set(result)
    assert 90 < result["aop_deg"] < 180
    assert result["hsd_mm"] == pytest.approx(result["hsd_px"] * 0.2, abs=1e-3)


HEAD_BIOMETRY = ("hc_px", "hc_mm", "bpd_px", "bpd_mm", "ofd_px", "ofd_mm", "ga_weeks", "ga_range_weeks")


def _measured(capsys, path, *options):
    assert main(["measure", str(path), *options]) == 0
    return json.loads(capsys.readouterr().out)


def test_measure_follows_the_pipelines_plane_rule_head_biometry_only_without_the_ps(tmp_path, capsys):
    """A label map with the PS in it is a transperineal view: its HC, BPD, OFD and GA are withheld with the reason the
    analysis pipeline gives on such a frame (``plane_policy_reason``), its AoP and HSD given; the same head without
    the PS (an axial head plane's mask) gives HC, BPD, OFD and GA, and no AoP or HSD."""
    from workstation.inference.pipeline import plane_policy_reason

    labels = make_transperineal_cine(1, seed=4).labels[0]
    transperineal, head_only = tmp_path / "tp.png", tmp_path / "head.png"
    cv2.imwrite(str(transperineal), labels)
    cv2.imwrite(str(head_only), np.where(labels == 1, 0, labels).astype(np.uint8))
    why = plane_policy_reason("hc_mm", "standard_plane")
    assert why and "axial head plane" in why
    assert main(["measure", str(transperineal), "--mm-per-px", "0.2", "--json", str(tmp_path / "tp.json")]) == 0
    result = json.loads((tmp_path / "tp.json").read_text())
    assert _measured(capsys, transperineal, "--mm-per-px", "0.2") == result  # the terminal says the same
    assert result["frame_class"] == "standard_plane" and result["aop_deg"] is not None
    assert all(result[key] is None for key in HEAD_BIOMETRY), result
    assert all(result["reasons"][key] == why for key in HEAD_BIOMETRY if key != "ga_range_weeks"), result["reasons"]
    assert result["geometry"]["head_ellipse"] is not None  # the ellipse is kept, as the pipeline keeps it
    head = _measured(capsys, head_only, "--mm-per-px", "0.2")
    assert head["frame_class"] == "not_transperineal" and head["aop_deg"] is None and head["hsd_px"] is None
    assert head["hc_mm"] is not None and head["ga_weeks"] is not None and "hc_mm" not in head["reasons"], head


def test_measure_on_real_label_maps_psfhs_withholds_head_biometry_hc18_gives_it(tmp_path, capsys):
    """The user review's case: a PSFHS transperineal label map gave an HC and GA with no reason; an HC18 head mask
    (its head, 1 there, written as label 2) gives its HC, near the challenge's reference."""
    psfhs = shared_path("psfhs", "labels", "03744_label.png")
    result = _measured(capsys, psfhs, "--mm-per-px", "0.2")
    assert result["aop_deg"] is not None and result["hc_mm"] is None and result["ga_weeks"] is None, result
    assert result["reasons"]["hc_mm"] == ("head biometry is taken on an axial head plane; this frame is classed "
                                          "standard plane (PS and FH)")
    mask = cv2.imread(str(shared_path("hc18", "masks", "217_HC_mask.png")), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(tmp_path / "hc18.png"), np.where(mask > 0, 2, 0).astype(np.uint8))
    head = _measured(capsys, tmp_path / "hc18.png", "--mm-per-px", "0.122675764851")
    assert head["frame_class"] == "not_transperineal", head
    assert head["hc_mm"] == pytest.approx(171.8, abs=3) and head["ga_weeks"] is not None, head


def truncated_j2k_dicom(path):
    data = pydicom_test_file("US1_J2KR.dcm").read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # pydicom warns of a missing delimiter as it reads this


def small_mp4(path, damage):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
    for i in range(20):
        writer.write(np.full((64, 64, 3), i * 10, np.uint8))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "cut" else b"\0" * 100 + data[100:])


@pytest.mark.parametrize("name, write, words", [
    ("bad.dcm", lambda p: p.write_bytes(b""), "empty"),
    ("bad.dcm", lambda p: p.write_bytes(b"this is not an image"), "not a dicom file"),
    ("cut.dcm", truncated_j2k_dicom, "truncated"),
    ("cut.mp4", lambda p: small_mp4(p, "cut"), "cannot be opened as a video"),  # FFmpeg: "moov atom not found"
    ("zeroed.mp4", lambda p: small_mp4(p, "zeroed"), "cannot be decoded"),  # FFmpeg: "header damaged"
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, tiny_manifest, name, write, words):
    """The user's one line is all stderr holds: no decoder warnings or FFmpeg lines around it."""
    bad = tmp_path / name
    write(bad)
    done = run_cli("analyze", str(bad), "--model", tiny_manifest)
    assert done.returncode == 2
    # The tiny model's placeholder notice is ours and expected once analysis has begun.
    lines = [line for line in done.stderr.splitlines() if line.strip() and "is a PLACEHOLDER" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and words in lines[0].lower()


def test_refused_model_is_one_line(tmp_path):
    manifest = write_manifest(build_tiny_onnx(tmp_path / "m.onnx"), sha256="1" * 64)
    done = run_cli("bench", "--model", str(manifest))
    assert done.returncode == 2 and "refused" in done.stderr and "Traceback" not in done.stderr


def test_bench_json(tiny_manifest, capsys):
    assert main(["bench", "--json", "--model", tiny_manifest, "--repeats", "5", "--frames", "8"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["latency_ms"]) == {"median", "p95"}
    assert result["cine_fps"] > 0 and result["peak_rss_mb"] > 0 and result["device"] == "cpu"
    assert result["cine"]["frames"] == 8


def test_bench_gui_takes_frames_and_refuses_the_model_options(monkeypatch, capsys):
    import workstation.gui.bench

    seen = []
    monkeypatch.setattr(workstation.gui.bench, "main", lambda argv: seen.append(argv) or 0)
    assert main(["bench", "--gui", "--json", "--frames", "12"]) == 0
    assert seen == [["--json", "--frames", "12"]]
    assert main(["bench", "--gui", "--model", "psfh-multitask", "--repeats", "5"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: bench --gui") and "--model, --repeats" in error and len(seen) == 1


def make_psfhs_folder(root, n=6):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    cine = make_transperineal_cine(n, shape=(256, 256), seed=5)
    for i in range(n):
        grey = np.choose(cine.labels[i], [0, 150, 255]).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"{i:05d}.png"), grey)
        cv2.imwrite(str(root / "labels" / f"{i:05d}_label.png"), cine.labels[i])
    return root


def test_evaluate_scores_a_perfect_segmenter_perfectly(tmp_path, capsys):
    # At the images' own size the grey-level model reproduces the labels: scores must be near perfect.
    manifest = str(write_manifest(build_tiny_onnx(tmp_path / "full.onnx", size=256), size=256))
    folder = make_psfhs_folder(tmp_path / "psfhs")
    assert main(["evaluate", "--dataset", "psfhs", str(folder), "--split", "all", "--model", manifest,
                 "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert EVALUATE_KEYS <= set(result) and result["n"] == 6
    assert result["dice"]["fh"] > 0.97 and result["dice"]["ps"] > 0.9
    assert result["aop_abs_error_deg"]["mean"] < 2.0
    assert result["hc_abs_error_mm"]["mean"] is None
    # what analyze shows (test-time passes averaged in) is scored too; for this model it is as good
    assert result["dice_pipeline"]["fh"] > 0.97 and result["dice_pipeline"]["ps"] > 0.9
    assert result["aop_abs_error_deg_pipeline"]["mean"] < 2.0


def test_evaluate_on_real_psfhs_runs(tiny_manifest, capsys):
    folder = shared_path("psfhs")
    assert main(["evaluate", "--dataset", "psfhs", str(folder), "--limit", "5", "--model", tiny_manifest,
                 "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 5 and result["split"] == "val"


def test_evaluate_on_real_hc18_runs(tiny_manifest, capsys):
    folder = shared_path("hc18")
    assert main(["evaluate", "--dataset", "hc18", str(folder), "--limit", "3", "--model", tiny_manifest,
                 "--quiet", "--cases"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 3 and result["dice"]["ps"] is None and "hc_abs_error_mm" in result
    assert 0.0 <= result["dice_pipeline"]["fh"] <= 1.0 and "hc_abs_error_mm_pipeline" in result
    # Each frame the tiny model outlines a head on carries its skull-echo evidence; withheld ones are counted.
    assert 0 <= result["hc_withheld_no_skull_echo"] <= result["hc_withheld"] <= 3
    assert "hc_abs_error_mm_pipeline_ungated" in result
    withheld = [c for c in result["cases"] if c["ai_biometry_withheld"]]
    assert all(c["hc_pipeline_mm"] is None for c in withheld) and len(withheld) == result["hc_withheld"]
    roc = result["hc_uncertainty_auroc"]  # every case has a reference HC, so all three are judged
    assert roc["threshold_mm"] == 5 and roc["n"] == 3 and 0 <= roc["n_bad"] <= 3
    assert roc["auroc"] is None if roc["n_bad"] in (0, 3) else 0.0 <= roc["auroc"] <= 1.0
    by_certainty = result["hc_error_by_certainty"]  # the whole set first, then fewer, surer frames
    assert by_certainty[0]["n"] == 3 and by_certainty[0]["missing"] == result["hc_missing_in_pipeline"]
    assert by_certainty[-1]["n"] >= 1 and by_certainty[-1]["max_uncertainty"] <= by_certainty[0]["max_uncertainty"]


def test_evaluate_rejects_a_folder_that_is_not_a_dataset(tmp_path, tiny_manifest, capsys):
    assert main(["evaluate", "--dataset", "psfhs", str(tmp_path), "--model", tiny_manifest]) == 2
    assert "not a dataset folder" in capsys.readouterr().err


def test_screenshot_of_the_window_through_the_real_entry_point(tmp_path):
    dcm = tmp_path / "demo.dcm"
    assert run_cli("demo-cine", str(dcm), "--frames", "12").returncode == 0
    out = tmp_path / "shots" / "window.png"
    done = run_cli("--screenshot", str(out), str(dcm))
    assert done.returncode == 0, done.stderr  # a crash at exit (e.g. bool_dealloc) would show here
    assert "Fatal Python error" not in done.stderr
    image = cv2.imread(str(out))
    assert image.shape == (900, 1440, 3) and image.std() > 20  # the whole window, not a blank image
    assert "frame" in done.stdout  # why that frame was chosen


def test_a_missing_file_for_the_window_is_one_line_and_no_window(tmp_path):
    done = run_cli(str(tmp_path / "nowhere.dcm"))
    assert done.returncode == 2 and done.stderr.strip() == f"error: {tmp_path / 'nowhere.dcm'}: no such file or folder"


def test_headless_commands_never_import_qt(tmp_path):
    labels = tmp_path / "labels.png"
    cv2.imwrite(str(labels), make_transperineal_cine(1, seed=4).labels[0])
    code = ("import sys\nfrom workstation.cli import main\nassert main(['measure', sys.argv[1]]) == 0\n"
            "qt = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'))\n"
            "assert not qt, qt\n")
    done = subprocess.run([sys.executable, "-c", code, str(labels)], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_mm_per_px_overrides_an_exams_calibration_as_a_files(tmp_path, tiny_manifest, capsys, monkeypatch):
    """``analyze --exam ID --mm-per-px X`` takes the loader's override: the same scale, and the same one-line refusal
    of a value no scale can have (its cine closed), as ``analyze FILE --mm-per-px X``."""
    from records_support import demo_exam_file
    from workstation.io.cine import Cine
    from workstation.records import Records, import_scan

    path = demo_exam_file(tmp_path / "usb", seed=1)
    data = tmp_path / "data"
    with Records(data) as records:
        exam_id = import_scan(records, path).exam.id
    model = ["--model", tiny_manifest, "--device", "cpu", "--quiet"]
    by_exam = ["--exam", str(exam_id), "--data-dir", str(data)]
    results = {}
    for name, source in (("file", [str(path)]), ("exam", by_exam)):
        assert main(["analyze", *source, "--mm-per-px", "0.3", "--no-tta", *model]) == 0
        results[name] = json.loads(capsys.readouterr().out)
    for result in results.values():
        assert result["calibration_source"] == "manual"
        in_mm = [f for f in result["frames"] if f["hsd_mm"] is not None]
        assert in_mm and all(f["hsd_mm"] == pytest.approx(0.3 * f["hsd_px"], rel=1e-3) for f in in_mm)
    assert results["exam"]["frames"] == results["file"]["frames"]

    closed = []
    close = Cine.close
    monkeypatch.setattr(Cine, "close", lambda self: (closed.append(self), close(self))[1])
    errors = {}
    for name, source in (("file", [str(path)]), ("exam", by_exam)):
        closed.clear()
        assert main(["analyze", *source, "--mm-per-px", "50", *model]) == 2
        errors[name] = capsys.readouterr().err.strip()
        assert closed, name
    assert errors["exam"] == errors["file"] and errors["file"].startswith("error: ") and "\n" not in errors["file"]
    assert "manual calibration" in errors["file"]
