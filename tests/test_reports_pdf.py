"""Reports: Qt-free overlays, and PDF reports of an exam and a labour rendered to PNG (pdftoppm) and read back.

The PDF checks need poppler-utils (``pdftoppm``, ``pdftotext``); they skip with a reason where it is absent.
"""
from __future__ import annotations

import shutil
import subprocess

import cv2
import numpy as np
import pytest

from records_support import add_ai_row, synthetic_measurement, three_exam_labor, tiny_model
from workstation.records import Records, correct, import_scan, labor_timeline
from workstation.reports import render_overlays, write_exam_report, write_labor_report
from workstation.reports.overlays import COLOURS, aop_label, hsd_label


def _near(image, point, colour, radius=2) -> bool:
    """Whether ``colour`` (within a little anti-aliasing) is drawn within ``radius`` px of ``point``."""
    x, y = int(round(point[0])), int(round(point[1]))
    patch = image[y - radius:y + radius + 1, x - radius:x + radius + 1].astype(int)
    return bool((np.abs(patch - np.array(colour)).max(axis=2) <= 40).any())


def test_render_overlays_draws_each_part_where_the_geometry_says():
    measured = synthetic_measurement(3)
    geometry = measured["geometry"]
    frame = np.full((480, 640), 80, np.uint8)
    frame.flags.writeable = False  # as cached cine frames are
    image = render_overlays(frame, geometry, values=measured)
    assert image.shape == (480, 640, 3) and image.dtype == np.uint8
    ps, aop, hsd = geometry["ps_axis"], geometry["aop"], geometry["hsd"]
    assert _near(image, ps["inferior"], COLOURS["inferior_end"])
    assert _near(image, np.mean([ps["superior"], ps["inferior"]], axis=0), COLOURS["ps_axis"])
    assert _near(image, np.mean([aop["vertex"], aop["tangent_point"]], axis=0), COLOURS["tangent"])
    assert _near(image, np.mean([hsd["start"], hsd["end"]], axis=0), COLOURS["hsd"])
    ellipse = geometry["head_ellipse"]
    a, angle = ellipse["semi_axes"][0], np.radians(ellipse["angle_deg"])
    assert _near(image, np.add(ellipse["center"], [a * np.cos(angle), a * np.sin(angle)]), COLOURS["head_ellipse"])
    assert (frame == 80).all()


def test_the_key_frame_prints_stored_values_and_never_recomputes_a_refused_one():
    assert aop_label({"aop_deg": 131.44}) == "AoP 131.4 deg"
    assert aop_label({"aop_deg": 131.44}, "AI") == "AoP 131.4 deg (AI)"
    assert hsd_label({"hsd_mm": 12.34}, "corrected") == "HSD 12.3 mm (corrected)"
    assert aop_label({"aop_deg": None}, "AI") == "AoP withheld"
    # A correction whose AoP was refused (24.8 deg is implausible) keeps its lines: the label says withheld.
    assert aop_label({"aop_deg": None, "hsd_mm": 12.0}) == "AoP withheld"
    assert hsd_label({"hsd_mm": 12.34, "hsd_px": 60.0}) == "HSD 12.3 mm"
    assert hsd_label({"hsd_mm": None, "hsd_px": 60.4}) == "HSD 60 px"
    assert hsd_label({"hsd_mm": None, "hsd_px": None}) == "HSD withheld"
    geometry = synthetic_measurement(3)["geometry"]
    frame = np.full((480, 640), 80, np.uint8)
    lines_only = render_overlays(frame, geometry)
    withheld = render_overlays(frame, geometry, values={"aop_deg": None, "hsd_mm": None, "hsd_px": None})
    shown = render_overlays(frame, geometry, values={"aop_deg": 24.8, "hsd_mm": None, "hsd_px": None})
    assert (withheld != lines_only).any()  # the labels are drawn (lines are the same)
    assert (withheld != shown).any()  # and "AoP withheld" is not "AoP 24.8 deg"


def test_render_overlays_tints_labels_and_leaves_an_empty_geometry_alone():
    frame = np.full((60, 80, 3), 100, np.uint8)
    assert (render_overlays(frame, None) == frame).all()
    assert (render_overlays(frame, {"ps_axis": None, "aop": None}) == frame).all()
    labels = np.zeros((60, 80), np.uint8)
    labels[10:20, 10:20] = 2
    tinted = render_overlays(frame, {}, labels=labels)
    assert (tinted[15, 15] != frame[15, 15]).any() and (tinted[40, 60] == frame[40, 60]).all()
    with pytest.raises(ValueError, match="does not match"):
        render_overlays(frame, {}, labels=np.zeros((5, 5), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        render_overlays(frame.astype(np.float32), {})


def _poppler():
    if not (shutil.which("pdftoppm") and shutil.which("pdftotext")):
        pytest.skip("poppler-utils (pdftoppm, pdftotext) not installed: apt-get install -y poppler-utils")


def _render(pdf, folder) -> tuple[list[np.ndarray], str]:
    """Pages as grey images at 60 dpi, and the PDF's text."""
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(folder / pdf.stem)], check=True, timeout=60)
    pages = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.glob(f"{pdf.stem}-*.png"))]
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True,
                          timeout=60).stdout
    return pages, text


def raw_text(pdf) -> str:
    """The PDF's text in reading order (a table cell's wrapped lines together), whitespace collapsed."""
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True, timeout=60).stdout
    return " ".join(text.split())


def _assert_not_blank(page: np.ndarray) -> None:
    assert page is not None and page.shape[0] > 600  # A4 at 60 dpi is 702 x 496
    ink = (page < 200).mean()
    assert 0.01 < ink < 0.6, f"page looks blank or black ({ink:.3f} of it is ink)"


@pytest.fixture
def labor_with_correction(tmp_path):
    with Records(tmp_path / "data") as records:
        exam_ids = three_exam_labor(records, tmp_path / "usb", model=tiny_model(tmp_path / "model"))
        correct(records, exam_ids[1], 1, {"aop": synthetic_measurement(2)["geometry"]["aop"]}, "Dr Smith",
                note="tangent on the skull")
        yield records, exam_ids


def test_exam_report_shows_patient_key_frame_correction_model_and_disclaimer(labor_with_correction, tmp_path):
    _poppler()
    records, exam_ids = labor_with_correction
    pdf = write_exam_report(records, exam_ids[1], tmp_path / "exam.pdf")
    pages, text = _render(pdf, tmp_path)
    assert len(pages) == 2
    for page in pages:
        _assert_not_blank(page)
    flat = " ".join(text.split())
    for expected in ("MRN-0042", "Doe, Jane", "exam 2", "Dr Smith", "corrected", "tangent on the skull",
                     "PLACEHOLDER MODEL (tiny 0.0.1)", "Decision support only", "120 deg (Kalache 2009)",
                     "AcquisitionDateTime", "dicom_regions"):
        assert expected in flat, expected
    corrected = records.current_measurement(exam_ids[1])
    assert f"{corrected.aop_deg:.1f} deg" in flat and f"{corrected.hsd_mm:.1f} mm" in flat
    assert "The AI built the AoP lines" not in flat  # the lines drawn are the person's


def test_exam_report_says_which_segmentation_the_ai_aop_lines_were_built_on(tmp_path):
    _poppler()
    from workstation.synthetic import make_transperineal_cine

    # grey levels the tiny model segments exactly (background 0, PS 150, head 255)
    labels = make_transperineal_cine(n_frames=1, shape=(240, 320), seed=2).labels[0]
    image = tmp_path / "labels.png"
    cv2.imwrite(str(image), np.choose(labels, [0, 150, 255]).astype(np.uint8))
    with Records(tmp_path / "data") as records:
        exam = import_scan(records, image, mrn="MRN-7", model=tiny_model(tmp_path / "model")).exam
        ai = records.current_measurement(exam.id)  # the model's own row, from its analysis
        assert ai.kind == "ai" and ai.aop_deg is not None
        frame = records.frame_result(ai.analysis_id, ai.frame_index)
        assert frame == next(f for f in records.frame_results(ai.analysis_id) if f["index"] == ai.frame_index)
        assert records.frame_result(ai.analysis_id, 10_000) is None
        record = frame["aop_construction"]
        _, text = _render(write_exam_report(records, exam.id, tmp_path / "exam.pdf"), tmp_path)
    flat = " ".join(text.split())
    assert f"The AI built the AoP lines on the {record['segmentation']} segmentation" in flat
    assert f"direct AoP estimate ({record['direct_estimate_deg']:.1f} deg)" in flat


def test_labor_report_shows_every_exam_and_the_timeline(labor_with_correction, tmp_path):
    _poppler()
    records, exam_ids = labor_with_correction
    pdf = write_labor_report(records, records.exam(exam_ids[0]).labor_id, tmp_path / "labor.pdf")
    pages, text = _render(pdf, tmp_path)
    assert len(pages) >= 2
    for page in pages:
        _assert_not_blank(page)
    flat = " ".join(text.split())
    assert "Sonopartogram" in flat and "hours since labour start" in flat
    for exam_id in exam_ids:
        assert f"Exam {exam_id}:" in flat
    assert "correction by Dr Smith" in flat and flat.count("MRN-0042") >= len(pages)  # every page names the patient
    assert "AI uncertainty" in flat and flat.count("0.25 (low)") >= 2 * len(exam_ids)  # points table and each exam


def test_an_uncalibrated_exam_reports_pixels_with_the_reason(tmp_path):
    _poppler()
    image = tmp_path / "still.png"
    cv2.imwrite(str(image), np.full((480, 640), 90, np.uint8))
    with Records(tmp_path / "data") as records:
        exam = import_scan(records, image, mrn="MRN-9").exam
        row = add_ai_row(records, exam.id, 0)
        pdf = write_exam_report(records, exam.id, tmp_path / "uncalibrated.pdf")
        point = labor_timeline(records, exam.labor_id)["points"][0]
        labor_pdf = write_labor_report(records, exam.labor_id, tmp_path / "uncalibrated-labour.pdf")
    _, text = _render(pdf, tmp_path)
    flat = " ".join(text.split())
    assert row.hsd_mm is None and f"{row.hsd_px:.0f} px (no mm: the file" in flat and "calibration: none" in flat
    # The timeline point carries the reason too, and the labour report's points table gives it.
    assert point["hsd_mm"] is None and point["hsd_mm_reason"] == row.reasons["hsd_mm"]
    (tmp_path / "labour").mkdir()
    _, labor_text = _render(labor_pdf, tmp_path / "labour")
    labor_flat = " ".join(labor_text.split())
    assert labor_flat.count(f"{row.hsd_px:.0f} px (no mm: the file") >= 2  # points table and the exam's table
    assert "PLACEHOLDER" not in flat  # no model analysed this exam


def test_render_overlays_enlarges_a_small_frame_and_draws_the_geometry_at_the_same_place():
    frame = np.zeros((128, 128), np.uint8)
    geometry = {"ps_axis": {"superior": [20.0, 30.0], "inferior": [60.0, 40.0]}}
    plain = render_overlays(frame, geometry)
    enlarged = render_overlays(frame, geometry, min_side=300)  # 128 -> x3 = 384
    assert plain.shape == (128, 128, 3) and enlarged.shape == (384, 384, 3)
    # The inferior end's red dot lands at 3x its frame position; nothing is drawn far from the axis.
    assert tuple(enlarged[120, 180]) == (255, 64, 64)
    assert tuple(plain[40, 60]) == (255, 64, 64)
    assert not enlarged[300:, :].any() and not enlarged[:, 250:].any()
    assert (render_overlays(np.zeros((600, 800), np.uint8), geometry, min_side=480).shape == (600, 800, 3))


def test_each_ai_value_in_the_reports_sits_beside_its_own_frames_uncertainty_naming_the_frame(tmp_path):
    """The AI chose frame 0 (uncertainty 0.46); a person measured frame 3, where the AI's uncertainty was 0.74
    (HIGH), and another confirmed it. The exam table gives the AI's value of frame 0 beside frame 0's 0.46 and says
    what the AI measured on frame 3 beside frame 3's 0.74; the labour's points table gives the AI's AoP of frame 3
    beside 0.74, naming the frame (not the one the AI chose). Frame 0's value never sits beside frame 3's uncertainty
    (the reviewer's case: 0.74 beside the AI's frame-0 AoP)."""
    _poppler()
    from records_support import demo_exam_file, save_analysis_with_uncertainties
    from workstation.records import confirm

    with Records(tmp_path / "data") as records:
        exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0)).exam
        save_analysis_with_uncertainties(records, exam.id, [0.46, 0.2, 0.3, 0.74], chosen=0)
        ai = records.latest_ai_measurement(exam.id)
        correct(records, exam.id, 3, synthetic_measurement(3)["geometry"], "carol")
        confirm(records, exam.id, "dave")
        current = records.current_measurement(exam.id)
        exam_pdf = write_exam_report(records, exam.id, tmp_path / "exam.pdf")
        labor_pdf = write_labor_report(records, exam.labor_id, tmp_path / "labor.pdf")
    ai3 = synthetic_measurement(3)["aop_deg"]
    assert ai.frame_index == 0 and current.frame_index == 3 and f"{ai.aop_deg:.1f}" != f"{ai3:.1f}"
    for pdf in (exam_pdf, labor_pdf):
        raw = raw_text(pdf)  # a table cell wrapped over lines stays together in reading order
        assert "AI value (frame 0) AI uncertainty Current value (frame 3)" in raw, (pdf.name, raw)
        # The AI's row: its value, then its own frame's uncertainty, then the value in force.
        assert (f"AoP {ai.aop_deg:.1f} deg 0.46 (moderate), frame 0 {current.aop_deg:.1f} deg confirmed dave"
                in raw), (pdf.name, raw)
        assert f"{ai.aop_deg:.1f} deg 0.74" not in raw, pdf.name
        # What the AI measured on the frame the value in force stands on, beside that frame's uncertainty.
        assert (f"On frame 3, where the value in force was measured, the AI's AoP was {ai3:.1f} deg; its uncertainty "
                f"there is 0.74 (HIGH)." in raw), (pdf.name, raw)
    raw = raw_text(labor_pdf)
    assert f"{ai3:.1f} deg (frame 3) 0.74 (HIGH), frame 3" in raw, raw  # not the AI's chosen frame: named


def _words(pdf, page: int = 1) -> list[tuple[str, float, float, float, float]]:
    """(word, xMin, yMin, xMax, yMax) in points of one page, from ``pdftotext -bbox``."""
    import html
    import re

    out = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>'
    return [(html.unescape(w), float(a), float(b), float(c), float(d)) for a, b, c, d, w in re.findall(pattern, out)]


def test_names_and_mrns_in_any_script_are_printed_readably_and_a_long_name_stays_on_the_page(tmp_path):
    """Cyrillic and CJK in a name or MRN are printed in an embedded Unicode font (not boxes), the DICOM ^ separator
    reads as "Family, Given", and a very long name is cut short in the page header (which keeps the MRN, the
    labour and the print date clear) and wrapped in the patient block."""
    _poppler()
    from records_support import demo_exam_file

    long_name = "Verylongfamilyname^" + " ".join(f"Given{i}" for i in range(40))
    with Records(tmp_path / "data") as records:
        cyrillic = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0), mrn="李-0001", force_mrn=True,
                               name="Иванова^Мария").exam
        long = import_scan(records, demo_exam_file(tmp_path / "usb", seed=1), mrn="MRN-LONG", force_mrn=True,
                           name=long_name).exam
        cyrillic_pdf = write_exam_report(records, cyrillic.id, tmp_path / "cyrillic.pdf")
        long_pdf = write_exam_report(records, long.id, tmp_path / "long.pdf")
    fonts = subprocess.run(["pdffonts", str(cyrillic_pdf)], check=True, capture_output=True, text=True).stdout
    rows = [line.split() for line in fonts.splitlines()[2:]]
    assert any("DejaVuSans" in r[0] for r in rows) and any("DroidSansFallback" in r[0] for r in rows), fonts
    assert all(r[-5] == "yes" for r in rows), fonts  # every font the report uses is embedded, the chart's too
    raw = raw_text(cyrillic_pdf)
    assert "Иванова, Мария" in raw and "李-0001" in raw and "^" not in raw, raw[:400]
    pages, _ = _render(cyrillic_pdf, tmp_path)
    _assert_not_blank(pages[0])

    words = _words(long_pdf)
    page_w = 595.28
    header = [w for w in words if w[2] < 45]  # the header line, above the body
    printed = next(w for w in header if w[0] == "printed")
    assert [w[0] for w in header][:2] == ["MRN", "MRN-LONG"] and "labour" in [w[0] for w in header]
    assert all(w[3] < printed[1] for w in header if w[1] < printed[1]), header  # nothing runs into the date
    assert all(w[3] <= page_w - 40 for w in words), [w for w in words if w[3] > page_w - 40]
    assert "Verylongfamilyname," in raw_text(long_pdf) and "Given39" in raw_text(long_pdf)  # whole in the body


def test_labels_pushed_against_the_same_edge_do_not_cover_each_other():
    from workstation.reports.overlays import _Painter

    for anchor in ((630.0, 40.0), (630.0, 470.0), (320.0, 240.0)):  # right edge, bottom-right corner, middle
        painter = _Painter(np.zeros((480, 640, 3), np.uint8))
        painter.text(anchor, "HSD 14.0 mm (confirmed)", COLOURS["hsd"], np.array([1.0, 0.0]))
        painter.text(anchor, "AoP 141.6 deg (confirmed)", COLOURS["tangent"], np.array([1.0, 0.0]))
        (a0, a1, a2, a3), (b0, b1, b2, b3) = painter.placed
        assert not (a0 < b2 and b0 < a2 and a1 < b3 and b1 < a3), (anchor, painter.placed)
        pad = painter.thickness + 2  # a box holds the text and its dark outline, which may touch the edge
        assert all(-pad <= v <= 640 + pad for v in (a0, a2, b0, b2)) and all(-pad <= v <= 480 + pad for v in (a1, a3, b1, b3))


def _strings(node) -> list:
    """The text items of a reportlab drawing, however deep in its groups."""
    from reportlab.graphics.shapes import String

    if isinstance(node, String):
        return [node]
    return [s for child in getattr(node, "contents", []) for s in _strings(child)]


def test_the_chart_is_set_in_the_reports_embedded_font_and_the_pdf_embeds_every_font_it_uses(labor_with_correction,
                                                                                             tmp_path):
    """The sonopartogram's labels and legend are in the report's DejaVu, registered once with the report's text (no
    Helvetica, which a PDF does not embed and a viewer substitutes)."""
    from workstation.reports import timeline_chart
    from workstation.reports.fonts import FONT

    records, exam_ids = labor_with_correction
    labor_id = records.exam(exam_ids[0]).labor_id
    chart = timeline_chart(labor_timeline(records, labor_id), highlight_exam_id=exam_ids[1])
    strings = _strings(chart)
    assert len(strings) > 10 and {s.fontName for s in strings} == {FONT}
    assert chart.initialFontName == FONT
    _poppler()
    for pdf in (write_labor_report(records, labor_id, tmp_path / "labor.pdf"),
                write_exam_report(records, exam_ids[1], tmp_path / "exam.pdf")):
        fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True, timeout=60).stdout
        rows = [line.split() for line in fonts.splitlines()[2:]]
        assert rows and all(r[-5] == "yes" for r in rows), fonts  # emb: yes for every font
        assert {r[0].split("+")[-1] for r in rows} <= {"DejaVuSansCondensed", "DejaVuSansCondensed-Bold",
                                                      "DroidSansFallback"}, fonts
        assert "hours since labour start" in raw_text(pdf)


def test_printable_replaces_each_character_neither_font_has_with_one_visible_replacement():
    from workstation.reports.fonts import FONT, FONT_FALLBACK, REPLACEMENT, covered, printable, runs

    assert ord(REPLACEMENT) in covered(FONT)  # DejaVu draws it: a question mark in a black diamond
    cases = {
        "Doe, Jane": "Doe, Jane", "Ünïcödé Łódź": "Ünïcödé Łódź", "Иванова, Мария": "Иванова, Мария",
        "王小明": "王小明", "Maria 😀": "Maria 😀",  # DejaVu has this emoji: printed as it is
        "Maria 🦄": "Maria �", "Anna 👍🏽.": "Anna �.",  # a skin-tone modifier goes with its emoji
        "👩\u200d👩\u200d👧 family": "� family", "🧑\u200d⚕\ufe0f": "�", "🇬🇧🇫🇷": "��",  # joined, and flags
        "김민지": "���", "हिन्दी": "���",  # scripts neither font has: one per character as read (marks go along)
        "x\x07y": "x�y", "a\ud83db": "a�b",  # a control character, a lone surrogate
        "x\ny\tz\u3000w": "x y z w",  # whitespace neither font has (for DejaVu) is a space
        "a\U000e0001b": "ab",  # an invisible format character neither has: nothing to print
    }
    for text, expected in cases.items():
        assert printable(text) == expected, text
        assert printable(expected) == expected, expected
    assert runs("Maria 🦄 王") == [(False, "Maria � "), (True, "王")]
    assert all(ord(c) in covered(FONT) for c in "Maria � ") and ord("王") in covered(FONT_FALLBACK)


def test_characters_neither_font_has_print_as_a_visible_replacement_in_header_tables_and_paragraphs(tmp_path):
    """An emoji or a letter neither embedded font has (here a unicorn, a skin-toned baby, Hangul) prints as U+FFFD
    wherever a person's text goes (page header, patient block, tables, the key frame's caption), never as an empty
    box; the rest of the name prints as written."""
    _poppler()
    from records_support import demo_exam_file

    with Records(tmp_path / "data") as records:
        patient = records.get_or_create_patient("MRN-77", name="Иванова 🦄^Мария 王 김")
        labor = records.create_labor(patient.id, notes="twins 👶🏽👶🏽")
        exam = import_scan(records, demo_exam_file(tmp_path / "usb", seed=0), mrn="MRN-77", force_mrn=True,
                           labor_id=labor.id).exam
        add_ai_row(records, exam.id, 0)
        correct(records, exam.id, 1, {"aop": synthetic_measurement(2)["geometry"]["aop"]}, "Dr 🩺 Smith",
                note="head low 🦄")
        exam_pdf = write_exam_report(records, exam.id, tmp_path / "exam.pdf")
        labor_pdf = write_labor_report(records, labor.id, tmp_path / "labor.pdf")
    for pdf in (exam_pdf, labor_pdf):
        raw = raw_text(pdf)
        assert raw.count("Иванова �, Мария 王 �") >= 2, raw[:600]  # the page header and the patient block
        assert "twins ��" in raw and "Dr � Smith" in raw, raw  # notes, a person's name in the tables
        assert not any(c in raw for c in "🦄👶🏽🩺김"), raw
    exam_raw = raw_text(exam_pdf)
    assert "head low �" in exam_raw and "correction by Dr � Smith." in exam_raw  # history note, key frame caption
    # The replacement is drawn: ink where pdftotext places it in the page header.
    subprocess.run(["pdftoppm", "-png", "-r", "144", "-f", "1", "-l", "1", str(exam_pdf), str(tmp_path / "page")],
                   check=True, timeout=60)
    page = cv2.imread(str(next(tmp_path.glob("page*.png"))), cv2.IMREAD_GRAYSCALE)
    header = [w for w in _words(exam_pdf) if w[2] < 45]
    replacement = next(w for w in header if w[0] == "�,")
    x0, y0, x1, y1 = (int(v * 2) for v in replacement[1:])
    assert (page[y0:y1, x0:x1] < 128).sum() > 20, "the replacement is not drawn"


# -- head biometry, the calibration in force, labels on a backing, non-square pixels ---------------------------------
HEAD_PLANE_MODEL = {"name": "tiny", "version": "0.0.1", "sha256": "0" * 64, "placeholder": True}


def head_plane_exam(records, folder, mrn: str = "H1", withheld: str | None = None):
    """An exam of one axial head plane (an 800 x 540 image without a scale, as an HC18 image) whose analysis found a
    head ellipse and no pubic symphysis, as the pipeline stores it (frame class ``not_transperineal``); ``withheld``:
    the reason the AI's head biometry is withheld (no skull echo), as ``check_ai_biometry`` records it."""
    from datetime import datetime

    from workstation.inference.pipeline import keep_ai_biometry_withheld
    from workstation.measure import measure_labelmap

    labels = np.zeros((540, 800), np.uint8)
    cv2.ellipse(labels, (400, 250), (200, 160), 20, 0, 360, 2, -1)  # HC about 70 mm at 0.062 mm/px, as HC18's 002
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / f"head-{mrn}.png"
    pixels = np.where(labels == 2, 150, 40).astype(np.uint8)
    pixels[0, :len(mrn)] = [ord(c) for c in mrn]  # each patient's own file: the same content is one exam of one patient
    cv2.imwrite(str(image), pixels)
    exam = import_scan(records, image, mrn=mrn, acquired=datetime(2026, 11, 20, 8, 0)).exam
    frame = measure_labelmap(labels, None).to_json()
    if withheld:
        frame = keep_ai_biometry_withheld({**frame, "ai_biometry_withheld": withheld})
    frame.update(index=0, time_s=0.0, frame_class="not_transperineal", uncertainty=0.33)
    records.save_analysis(exam.id, {"model": HEAD_PLANE_MODEL, "frames": [frame],
                                    "summary": {"chosen_frame": 0, "why": "axial head plane (test)"}})
    return exam


def test_the_values_of_head_biometry_are_written_once_for_tables_labels_and_lines():
    from workstation.reports.values import (describe_head, describe_head_value, describe_transperineal, hc_label,
                                            head_labels)

    from workstation.measure import ramanujan_perimeter

    ellipse = {"center": [400.0, 250.0], "semi_axes": [180.0, 140.0], "angle_deg": 20.0}
    hc_px = ramanujan_perimeter(180.0, 140.0)
    why = "the file gives no physical scale: pixels only"
    in_px = {"hc_mm": None, "bpd_mm": None, "ofd_mm": None, "ga_weeks": None, "geometry": {"head_ellipse": ellipse},
             "reasons": {key: why for key in ("hc_mm", "bpd_mm", "ofd_mm", "ga_weeks")}}
    # A records row keeps mm only: the pixels are measured on its ellipse, with why there is no mm.
    assert describe_head_value(in_px, "HC") == f"{hc_px:.0f} px (no mm: {why})"
    assert describe_head_value(in_px, "BPD") == f"280 px (no mm: {why})"
    assert describe_head_value(in_px, "GA") == f"none ({why})"
    assert describe_head(in_px) == f"HC {hc_px:.0f} px, BPD 280 px, OFD 360 px, GA - (no mm, no GA: {why})"
    assert head_labels(in_px, "AI") == [f"HC {hc_px:.0f} px (AI)", "BPD 280 px, OFD 360 px"]
    in_mm = {"hc_mm": 69.53, "bpd_mm": 20.23, "ofd_mm": 23.96, "ga_weeks": 12.66, "geometry": {"head_ellipse": ellipse}}
    assert describe_head_value(in_mm, "HC") == "69.5 mm" and describe_head_value(in_mm, "OFD") == "24.0 mm"
    assert describe_head_value(in_mm, "GA") == "12.7 wk (+-2 wk: 10.7-14.7)"
    assert describe_head(in_mm) == "HC 69.5 mm, BPD 20.2 mm, OFD 24.0 mm, GA 12.7 wk (+-2 wk: 10.7-14.7)"
    assert head_labels(in_mm, "confirmed") == ["HC 69.5 mm (confirmed)", "BPD 20.2 mm, OFD 24.0 mm", "GA 12.7 wk +-2"]
    assert hc_label({"hc_mm": 69.53}) == "HC 69.5 mm" and hc_label({"hc_px": 412.2}) == "HC 412 px"
    assert hc_label({"hc_mm": None}) is None
    # Withheld (no skull echo): no pixels from the ellipse either; the reason, said once.
    echo = "no fetal skull echo along the outline"
    withheld = {"geometry": {"head_ellipse": ellipse},
                "reasons": {key: echo for key in ("hc_px", "hc_mm", "bpd_px", "bpd_mm", "ofd_px", "ofd_mm",
                                                  "ga_weeks")}}
    assert describe_head_value(withheld, "HC") == f"none ({echo})"
    assert describe_head(withheld) == f"no HC, BPD, OFD, GA: {echo}"
    assert head_labels(withheld, "AI") == ["HC withheld"]
    # AoP and HSD on one line: pixels with why there is no mm; one reason where both are absent for it.
    assert describe_transperineal({"aop_deg": 127.61, "hsd_mm": 14.04, "hsd_px": 69.8}) == "AoP 127.6 deg, HSD 14.0 mm"
    assert (describe_transperineal({"aop_deg": 125.1, "hsd_px": 31.2, "reasons": {"hsd_mm": why}})
            == f"AoP 125.1 deg, HSD 31 px (no mm: {why})")
    assert (describe_transperineal({"reasons": {"aop_deg": "no pubic symphysis", "hsd_px": "no pubic symphysis"}})
            == "no AoP or HSD (no pubic symphysis)")


def test_an_exams_head_biometry_reaches_the_report_ai_and_a_persons_apart_in_the_calibration_in_force(tmp_path):
    """The reviewer's case: an axial head plane without a scale, a manual calibration set on the exam, a person's
    acceptance; then a person's correction of the ellipse. The report shows HC, BPD, OFD, GA (mm only in the manual
    calibration, GA with its range), the AI's value beside the person's with who and when, the key frame's label,
    and the calibration in force with who set it, not the file's "none"."""
    _poppler()
    from workstation.records import confirm
    from workstation.records.calibration import set_exam_calibration

    with Records(tmp_path / "data") as records:
        exam = head_plane_exam(records, tmp_path / "usb")
        before = write_exam_report(records, exam.id, tmp_path / "before.pdf")
        set_exam_calibration(records, exam.id, 0.062032562715, "Midwife R")
        manual = records.current_calibration(exam.id)
        confirm(records, exam.id, "Midwife R")
        accepted = records.current_measurement(exam.id)
        confirmed_pdf = write_exam_report(records, exam.id, tmp_path / "confirmed.pdf")
        ellipse = {**accepted.geometry["head_ellipse"], "semi_axes": [215.0, 175.0]}
        correct(records, exam.id, 0, {"head_ellipse": ellipse}, "Dr Lee", note="ellipse on the outer skull")
        corrected = records.current_measurement(exam.id)
        labor_pdf = write_labor_report(records, exam.labor_id, tmp_path / "labor.pdf")
        corrected_pdf = write_exam_report(records, exam.id, tmp_path / "corrected.pdf")
    assert accepted.kind == "confirmation" and accepted.hc_mm is not None and accepted.ga_weeks is not None
    assert corrected.kind == "correction" and corrected.hc_mm > accepted.hc_mm

    raw = raw_text(before)  # no scale: pixels, with why there is no mm; no GA
    import re

    # The AI's value, its own frame's uncertainty beside it, then the value in force.
    assert re.search(r"HC (\d+) px \(no mm: no calibration: pixels only\) 0\.33 \(moderate\), frame 0 \1 px \(no mm",
                     raw), raw
    assert re.search(r"OFD \d+ px \(no mm:", raw) and "GA none (no calibration: pixels only)" in raw
    assert "calibration: none (the file's)" in raw

    raw = raw_text(confirmed_pdf)
    hc, bpd, ofd = (f"{value:.1f} mm" for value in (accepted.hc_mm, accepted.bpd_mm, accepted.ofd_mm))
    ga = accepted.ga_weeks
    u = "0.33 (moderate), frame 0"  # the AI's uncertainty on its frame, beside its value
    assert f"HC {hc} {u} {hc} confirmed Midwife R" in raw, raw
    assert f"BPD {bpd} {u} {bpd} confirmed" in raw and f"OFD {ofd} {u} {ofd} confirmed" in raw
    assert f"GA {ga:.1f} wk (+-2 wk: {ga - 2:.1f}-{ga + 2:.1f})" in raw
    assert "calibration: manual 0.06203 mm/px (entered by Midwife R), set by Midwife R at" in raw, raw
    # The calibration's own line (ExamCalibration.describe), its time to the minute as the report writes times.
    assert f"calibration: {manual.describe('%Y-%m-%d %H:%M')}; the file's own: none" in raw, raw
    assert "the file's own: none" in raw and "calibration: none" not in raw
    assert "green: head ellipse (HC, BPD, OFD, GA)" in raw
    assert f"HC {hc}, GA {ga:.1f} wk" in raw  # the history table

    for pdf in (corrected_pdf, labor_pdf):
        raw = raw_text(pdf)
        # The AI's value (measured again in the manual calibration) beside the person's, with who.
        assert f"HC {hc} {u} {corrected.hc_mm:.1f} mm corrected Dr Lee" in raw, (pdf.name, raw)
        assert f"GA {ga:.1f} wk (+-2 wk: {ga - 2:.1f}-{ga + 2:.1f}) {u} {corrected.ga_weeks:.1f} wk" in raw, pdf.name


def _key_frame_image(pdf, folder) -> np.ndarray:
    """The key frame as the PDF embeds it (pdfimages), RGB."""
    if not shutil.which("pdfimages"):
        pytest.skip("poppler-utils (pdfimages) not installed: apt-get install -y poppler-utils")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdfimages", "-png", "-f", "1", "-l", "1", str(pdf), str(folder / "image")], check=True,
                   timeout=60)
    images = [cv2.imread(str(p)) for p in sorted(folder.glob("image-*.png"))]
    return cv2.cvtColor(max(images, key=lambda im: im.shape[0] * im.shape[1]), cv2.COLOR_BGR2RGB)


def test_the_key_frame_labels_the_head_biometry_beside_the_ellipse(tmp_path):
    _poppler()
    with Records(tmp_path / "data") as records:
        exam = head_plane_exam(records, tmp_path / "usb")
        from workstation.records.calibration import set_exam_calibration

        set_exam_calibration(records, exam.id, 0.062032562715, "Midwife R")
        ai = records.current_measurement(exam.id)
        shown = _key_frame_image(write_exam_report(records, exam.id, tmp_path / "head.pdf"), tmp_path / "shown")
        withheld = head_plane_exam(records, tmp_path / "usb2", mrn="H2", withheld="no fetal skull echo")
        bare = _key_frame_image(write_exam_report(records, withheld.id, tmp_path / "withheld.pdf"), tmp_path / "bare")
    green = np.array(COLOURS["head_ellipse"])
    # Below the ellipse (its lowest point is near row 420 of 540): the label's green text on its dark backing.
    for image in (shown, bare):
        below = image[image.shape[0] * 430 // 540:, :]
        assert (np.abs(below.astype(int) - green).max(axis=2) <= 40).sum() > 100
    assert (np.abs(shown.astype(int) - green).max(axis=2) <= 40).sum() > (
        np.abs(bare.astype(int) - green).max(axis=2) <= 40).sum()  # three lines of values against "HC withheld"
    from workstation.reports.values import head_labels

    assert head_labels(ai, "AI")[0] == f"HC {ai.hc_mm:.1f} mm (AI)"


def test_labels_are_drawn_after_the_lines_on_a_backing_so_no_line_crosses_a_value():
    """The reviewer's crops: the green ellipse ran through "127.6" in "AoP 127.6 deg (AI)". A label is drawn last, on
    a dark backing: inside its box no line keeps its colour."""
    geometry = synthetic_measurement(3)["geometry"]
    values = {"aop_deg": 127.6, "hsd_mm": 14.0, "hsd_px": 69.8}
    frame = np.full((480, 640), 90, np.uint8)
    aop_only = {"aop": geometry["aop"]}
    label = (render_overlays(frame, aop_only, values=values) != render_overlays(frame, aop_only)).any(axis=2)
    rows, cols = np.nonzero(label)
    x0, y0, x1, y1 = cols.min(), rows.min(), cols.max(), rows.max()
    middle = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    # An ellipse through the middle of the label, and a PS axis across it.
    crossing = {**aop_only, "head_ellipse": {"center": [float(middle[0]) + 150.0, float(middle[1])],
                                             "semi_axes": [150.0, 150.0], "angle_deg": 0.0}}
    image = render_overlays(frame, crossing, values=values)
    inside = image[y0 + 2:y1 - 1, x0 + 2:x1 - 1].astype(int)
    for colour in ("head_ellipse",):
        assert not (np.abs(inside - np.array(COLOURS[colour])).max(axis=2) <= 40).any(), colour
    assert (np.abs(inside - np.array(COLOURS["tangent"])).max(axis=2) <= 40).sum() > 50  # the text itself
    assert inside.mean() < 90  # on its dark backing
    # A label never hides where a caliper ends when a place nearby is free: the PS axis' superior end where the HSD
    # label would go stays drawn.
    hsd_only = {"hsd": geometry["hsd"], "aop": geometry["aop"]}
    hsd_label_at = (render_overlays(frame, hsd_only, values=values) != render_overlays(frame, hsd_only)).any(axis=2)
    hsd_label_at &= ~label
    rows, cols = np.nonzero(hsd_label_at)
    covered = [float(cols.mean()), float(rows.mean())]
    moved = {**geometry, "ps_axis": {**geometry["ps_axis"], "superior": covered}}
    image = render_overlays(frame, moved, values=values)
    assert _near(image, covered, COLOURS["ps_axis"], radius=1)


def test_a_frame_whose_pixels_are_not_square_is_drawn_in_the_patients_shape():
    """mm per row 1.25 times mm per column: the frame is drawn 1.25 times as tall, and the geometry mapped the same
    way, so that the angle drawn is the AoP measured in the patient."""
    from workstation.calibration import Calibration, Scale
    from workstation.measure.transperineal import aop_from_points

    calibration = Calibration(pixel_spacing=Scale(0.2, 0.25, "pixel_spacing"))
    measured = synthetic_measurement(3, calibration)
    geometry = measured["geometry"]
    assert measured["pixel_aspect"] == pytest.approx(1.25)
    frame = np.full((480, 640), 80, np.uint8)
    image = render_overlays(frame, geometry, values=measured, aspect=1.25)
    assert image.shape == (600, 640, 3)

    def shown(p):  # frame pixel (x, y) -> the drawing's
        return np.array([p[0], (p[1] + 0.5) * 1.25 - 0.5])

    aop = geometry["aop"]
    assert _near(image, shown(geometry["ps_axis"]["inferior"]), COLOURS["inferior_end"])
    assert _near(image, shown(np.mean([aop["vertex"], aop["tangent_point"]], axis=0)), COLOURS["tangent"])
    assert _near(image, shown(np.mean([geometry["hsd"]["start"], geometry["hsd"]["end"]], axis=0)), COLOURS["hsd"])
    ellipse = geometry["head_ellipse"]
    a, angle = ellipse["semi_axes"][0], np.radians(ellipse["angle_deg"])
    assert _near(image, shown(np.add(ellipse["center"], [a * np.cos(angle), a * np.sin(angle)])),
                 COLOURS["head_ellipse"])
    # The angle between the drawn lines is the one printed.
    vertex, superior, tangent = (shown(aop[k]) for k in ("vertex", "superior", "tangent_point"))
    u, v = superior - vertex, tangent - vertex
    drawn = np.degrees(np.arccos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v)))
    assert drawn == pytest.approx(measured["aop_deg"], abs=0.05)
    assert drawn == pytest.approx(aop_from_points(aop["superior"], aop["vertex"], aop["tangent_point"], 1.25), abs=1e-6)
    # Rows squeezed (aspect below 1): the columns are stretched instead, never fewer pixels than the frame's.
    assert render_overlays(frame, geometry, aspect=0.8).shape == (480, 800, 3)


def _non_square_demo_file(folder, mm_per_row: float):
    """The demo cine with its ultrasound region giving ``mm_per_row`` mm per row (0.2 mm per column)."""
    import pydicom

    from records_support import demo_exam_file

    path = demo_exam_file(folder, seed=5)
    ds = pydicom.dcmread(path)
    region = ds.SequenceOfUltrasoundRegions[0]
    region.PhysicalDeltaX, region.PhysicalDeltaY = 0.02, mm_per_row / 10.0
    ds.save_as(path)
    return path


def test_the_report_of_a_cine_with_non_square_pixels_draws_its_key_frame_in_the_patients_shape(tmp_path):
    _poppler()
    from workstation.calibration import Scale
    from workstation.io import load

    shapes = {}
    for mm_per_row in (0.2, 0.25):
        with Records(tmp_path / f"data-{mm_per_row}") as records:
            exam = import_scan(records, _non_square_demo_file(tmp_path / f"usb-{mm_per_row}", mm_per_row)).exam
            cine = load(records.file_path(exam))
            scale = cine.calibration.scale_for([(320.0, 240.0)], cine.frame(0).shape).scale
            cine.close()
            assert (scale.mm_per_px_x, scale.mm_per_px_y) == pytest.approx((0.2, mm_per_row))
            values = synthetic_measurement(3, cine.calibration)
            records.add_measurement(exam.id, "ai", "tiny 0.0.1", values, frame_index=3, time_s=0.12,
                                    uncertainty=0.25, calibration_source=values["calibration"]["source"])
            pdf = write_exam_report(records, exam.id, tmp_path / f"exam-{mm_per_row}.pdf")
        image = _key_frame_image(pdf, tmp_path / f"images-{mm_per_row}")
        shapes[mm_per_row] = image.shape[0] / image.shape[1]
        text = raw_text(pdf)
        assert ("Drawn in the patient's shape" in text) == (mm_per_row != 0.2), text
    assert isinstance(Scale, type)
    assert shapes[0.2] == pytest.approx(480 / 640, abs=0.01)
    assert shapes[0.25] == pytest.approx(480 * 1.25 / 640, abs=0.01)


def test_a_calibrations_line_is_written_in_the_time_format_its_reader_asks_for():
    """One line for a calibration row (``ExamCalibration.describe``): the CLI's and a refusal's with the time as kept,
    the PDF's with the minute it writes every time in."""
    from workstation.records.store import ExamCalibration

    row = ExamCalibration(1, 1, "manual", 0.062032562715, "entered by Midwife R", "Midwife R",
                          "2026-03-01T14:30:12+01:00")
    line = "manual 0.06203 mm/px (entered by Midwife R), set by Midwife R at"
    assert row.describe() == f"{line} 2026-03-01T14:30:12+01:00"
    assert row.describe("%Y-%m-%d %H:%M") == f"{line} 2026-03-01 14:30"
