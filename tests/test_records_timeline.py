"""Corrections and confirmations, and the sonopartogram: current values, trend, 120 degree line, stalled flag."""
from __future__ import annotations

import pytest

from records_support import add_ai_row, demo_exam_file, synthetic_measurement, three_exam_labor
from workstation.records import Records, RecordsError, StallRule, confirm, correct, import_scan, labor_timeline
from workstation.records.timeline import stall_check, trend_deg_per_h

TIMELINE_KEYS = {"labor_id", "start", "points", "trend_deg_per_h", "stalled"}
POINT_KEYS = {"exam_id", "acquired", "hours", "aop_deg", "hsd_mm", "source"}


@pytest.fixture
def records(tmp_path):
    with Records(tmp_path / "data") as opened:
        yield opened


def test_acceptance_three_exams_one_corrected_show_in_the_timeline(records, tmp_path):
    exam_ids = three_exam_labor(records, tmp_path / "usb")
    ai_aop = [records.current_measurement(e).aop_deg for e in exam_ids]
    edited = synthetic_measurement(2)["geometry"]["aop"]  # a person moves the tangent point
    correction = correct(records, exam_ids[1], 1, {"aop": edited}, "Dr Smith", note="tangent on the skull")
    timeline = labor_timeline(records, records.exam(exam_ids[0]).labor_id)

    assert TIMELINE_KEYS <= set(timeline) and all(POINT_KEYS <= set(p) for p in timeline["points"])
    assert timeline["start"] == "2026-03-01T10:00:00"
    assert [p["exam_id"] for p in timeline["points"]] == exam_ids
    assert [p["hours"] for p in timeline["points"]] == [0.0, 1.5, 3.0]
    assert [p["source"] for p in timeline["points"]] == ["ai", "confirmed", "ai"]
    corrected = timeline["points"][1]
    assert corrected["aop_deg"] == correction.aop_deg != ai_aop[1]
    assert corrected["ai_aop_deg"] == ai_aop[1] and corrected["by"] == "Dr Smith" and corrected["kind"] == "correction"
    assert corrected["hsd_mm"] is not None  # the demo DICOM is calibrated
    # Every point carries the AI's uncertainty on its frame, a person's value too (the AI rows say 0.25).
    assert [p["ai_uncertainty"] for p in timeline["points"]] == [0.25, 0.25, 0.25]
    aops = [p["aop_deg"] for p in timeline["points"]]
    # Least squares over three evenly spaced times (0, 1.5, 3 h): the middle point drops out, slope (last - first) / 3 h.
    assert timeline["trend_deg_per_h"] == pytest.approx((aops[2] - aops[0]) / 3.0, abs=1e-3)
    assert timeline["trend_deg_per_h"] > 0 and timeline["stalled"] is False
    assert timeline["aop_threshold_deg"] == 120.0


def test_a_correction_is_recomputed_like_the_gui_and_keeps_the_history(records, tmp_path):
    from workstation.io import load
    from workstation.measure import Geometry, recompute

    exam = import_scan(records, demo_exam_file(tmp_path, seed=0)).exam
    ai = add_ai_row(records, exam.id, 0)
    geometry = synthetic_measurement(3)["geometry"]
    row = correct(records, exam.id, 3, geometry, "Dr Smith")
    cine = load(records.file_path(exam))
    expected = recompute(Geometry.from_json(geometry), cine.calibration, cine.frame_shape).to_json()
    assert row.kind == "correction" and row.supersedes_id == ai.id and row.frame_index == 3
    assert (row.aop_deg, row.hsd_mm, row.hsd_px) == (expected["aop_deg"], expected["hsd_mm"], expected["hsd_px"])
    assert row.calibration_source == cine.calibration.source and row.time_s == pytest.approx(cine.times_s[3])
    assert records.measurement(ai.id).aop_deg == ai.aop_deg  # the AI row is untouched
    confirmation = confirm(records, exam.id, "Midwife B")
    assert confirmation.kind == "confirmation" and confirmation.supersedes_id == row.id
    assert confirmation.aop_deg == row.aop_deg and confirmation.geometry == row.geometry
    assert [m.kind for m in records.measurements(exam.id)] == ["ai", "correction", "confirmation"]


def test_a_partial_correction_keeps_the_other_parts_of_the_same_frame(records, tmp_path):
    exam = import_scan(records, demo_exam_file(tmp_path, seed=0)).exam
    ai = add_ai_row(records, exam.id, 1)
    hsd = dict(ai.geometry["hsd"], end=[ai.geometry["hsd"]["end"][0], ai.geometry["hsd"]["end"][1] + 10])
    row = correct(records, exam.id, 1, {"hsd": hsd}, "Dr Smith")
    assert row.aop_deg == pytest.approx(ai.aop_deg, abs=1e-3)  # the AoP geometry came along unchanged
    assert row.hsd_px > ai.hsd_px


def test_bad_corrections_and_confirmations_are_refused_with_a_reason(records, tmp_path):
    exam = import_scan(records, demo_exam_file(tmp_path, seed=0)).exam
    with pytest.raises(RecordsError, match="no measured value to confirm"):
        confirm(records, exam.id, "Dr A")
    with pytest.raises(RecordsError, match="frames 0 to 3, not 9"):
        correct(records, exam.id, 9, {}, "Dr A")
    with pytest.raises(RecordsError, match="unknown geometry part"):
        correct(records, exam.id, 0, {"tangent": [1, 2]}, "Dr A")
    with pytest.raises(RecordsError, match="the 'aop' part needs vertex, superior and tangent_point; superior and "
                                           "tangent_point are not given"):
        correct(records, exam.id, 0, {"aop": {"vertex": [1, 2]}}, "Dr A")  # nothing in force to complete it from
    with pytest.raises(RecordsError, match="not usable: each part must be a JSON object of named points"):
        correct(records, exam.id, 0, {"hsd": 5}, "Dr A")  # was an AttributeError traceback
    with pytest.raises(RecordsError, match="not usable: a point needs two coordinates"):
        correct(records, exam.id, 0, {"head_contour": [[1, 2], [3]]}, "Dr A")
    # Typed slips: a point off the frame, or not a number, would still give an angle, a meaningless one.
    good = synthetic_measurement(0)["geometry"]["aop"]
    rows, cols = records.exam(exam.id).frame_shape
    for bad_point in ([-5000.0, 10.0], [float("nan"), 10.0], [1e308, 1.0], [cols + 2.0, 10.0]):
        with pytest.raises(RecordsError, match=f"is not on the {cols} x {rows} frame; geometry is given in the frame"):
            correct(records, exam.id, 0, {"aop": dict(good, vertex=bad_point)}, "Dr A")
    with pytest.raises(RecordsError, match="angle_deg must be a finite number"):
        correct(records, exam.id, 0, {"head_ellipse": {"center": [100, 100], "semi_axes": [50, 40],
                                                       "angle_deg": float("inf")}}, "Dr A")
    with pytest.raises(RecordsError, match="gives no measurement"):
        correct(records, exam.id, 0, {}, "Dr A")
    with pytest.raises(RecordsError, match="who made it"):
        correct(records, exam.id, 0, synthetic_measurement(0)["geometry"], "")
    assert records.measurements(exam.id) == []


def _points(*pairs):
    return [{"exam_id": i + 1, "hours": h, "aop_deg": a} for i, (h, a) in enumerate(pairs)]


def test_stalled_when_aop_rises_less_than_the_rule_over_its_span():
    rule = StallRule(span_h=2.0, min_rise_deg=5.0)
    assert stall_check(_points((0, 110), (2.5, 113)), rule)["stalled"] is True
    rising = stall_check(_points((0, 110), (2.5, 118)), rule)
    assert rising["stalled"] is False and rising["rise_deg"] == 8.0 and rising["reference_exam_id"] == 1
    too_short = stall_check(_points((0, 110), (1.0, 110)), rule)
    assert too_short["stalled"] is False and "less than 2 h" in too_short["reason"]
    # The reference is the latest exam at least the span earlier: an early rise does not hide a late plateau.
    assert stall_check(_points((0, 100), (1.0, 120), (3.5, 121)), rule)["stalled"] is True
    assert stall_check(_points((0, 100), (3.0, None), (3.5, 101)), rule)["reference_exam_id"] == 1
    assert stall_check(_points((0, 110), (2.5, 113)), StallRule(min_rise_deg=2.0))["stalled"] is False


def test_the_stall_reason_says_whether_aop_rose_fell_or_did_not_change():
    """A fall reads "fell 6.6 deg", never "rose -6.6 deg"; a flat or falling AoP is no progress, and stays stalled even
    under a rule asking for no rise (a falling AoP is not progress)."""
    rule = StallRule(span_h=2.0, min_rise_deg=5.0)
    fell = stall_check([{"exam_id": 3, "hours": 0.0, "aop_deg": 130.0}, {"exam_id": 7, "hours": 2.5, "aop_deg": 123.4}],
                       rule)
    assert fell["stalled"] is True and fell["rise_deg"] == -6.6
    assert fell["reason"].startswith("AoP fell 6.6 deg from exam 3 to exam 7 over 2.5 h: a falling AoP is not "
                                     "progress")
    assert "rose" not in fell["reason"] and "-" not in fell["reason"].split(" over")[0]
    flat = stall_check(_points((0, 110), (2.5, 110.02)), rule)
    assert flat["stalled"] is True
    assert flat["reason"] == "AoP did not change from exam 1 to exam 2 over 2.5 h: no progress"
    rose = stall_check(_points((0, 110), (2.5, 113)), rule)
    assert rose["reason"] == ("AoP rose 3.0 deg from exam 1 to exam 2 over 2.5 h, less than the 5 deg per 2 h the "
                              "stall rule asks for")
    assert stall_check(_points((0, 110), (2.5, 118)), rule)["reason"].endswith(", at least the 5 deg per 2 h the "
                                                                                  "stall rule asks for")
    close = stall_check(_points((0, 110), (2.5, 114.96)), rule)  # below the rule, though it rounds to 5.0
    assert close["stalled"] is True and "rose 4.96 deg" in close["reason"]
    for lenient in (StallRule(min_rise_deg=0.0), StallRule(min_rise_deg=-10.0)):
        assert stall_check(_points((0, 110), (2.5, 110)), lenient)["stalled"] is True
        assert stall_check(_points((0, 110), (2.5, 103.4)), lenient)["stalled"] is True
        assert stall_check(_points((0, 110), (2.5, 110.5)), lenient)["stalled"] is False


def test_trend_is_the_least_squares_slope():
    assert trend_deg_per_h([0.0, 1.0, 2.0], [110.0, 115.0, 120.0]) == pytest.approx(5.0)
    assert trend_deg_per_h([0.0, 1.0, 2.0], [110.0, 120.0, 116.0]) == pytest.approx(3.0)
    assert trend_deg_per_h([1.0], [110.0]) is None and trend_deg_per_h([1.0, 1.0], [110.0, 112.0]) is None


def test_an_exam_without_a_value_is_a_point_without_aop(records, tmp_path):
    exam = import_scan(records, demo_exam_file(tmp_path, seed=0)).exam
    timeline = labor_timeline(records, exam.labor_id)
    assert timeline["points"][0]["aop_deg"] is None and timeline["trend_deg_per_h"] is None
    assert timeline["stalled"] is False


def test_the_uncertainty_beside_a_persons_value_is_the_ais_on_that_values_frame(records, tmp_path):
    """A person measured on frame 3, where the AI was unsure (0.74); the AI chose frame 0 (0.46). The point says
    0.74, the AI's uncertainty on the frame the value stands on, not frame 0's."""
    from records_support import save_analysis_with_uncertainties

    exam = import_scan(records, demo_exam_file(tmp_path, seed=0)).exam
    save_analysis_with_uncertainties(records, exam.id, [0.46, 0.2, 0.3, 0.74], chosen=0)
    assert records.current_measurement(exam.id).uncertainty == 0.46
    point = labor_timeline(records, exam.labor_id)["points"][0]
    assert point["ai_uncertainty"] == 0.46 and point["ai_uncertainty_frame_index"] == 0
    correction = correct(records, exam.id, 3, synthetic_measurement(3)["geometry"], "carol")
    assert correction.uncertainty == 0.74
    confirm(records, exam.id, "dave")
    point = labor_timeline(records, exam.labor_id)["points"][0]
    assert point["kind"] == "confirmation" and point["frame_index"] == 3
    assert point["ai_uncertainty"] == 0.74 and point["ai_uncertainty_frame_index"] == 3
    # The AI value beside it is the AI's on that frame too (the AI's own value on record, frame 0, with frame 0's).
    assert point["ai_frame_index"] == 3 and point["ai_aop_deg"] == synthetic_measurement(3)["aop_deg"]
    ai = records.latest_ai_measurement(exam.id)
    assert point["ai_on_record"] == {"frame_index": 0, "aop_deg": ai.aop_deg, "uncertainty": 0.46}


def test_times_with_a_utc_offset_are_ordered_and_subtracted_as_instants_across_a_dst_night(records, tmp_path):
    """The night the clocks go back (Europe/London, 2026-10-25): 00:30+01:00, 01:30+01:00, 01:30+00:00 and
    02:30+00:00 are an hour apart each, whatever order they are imported in and whatever the machine's zone."""
    from datetime import datetime

    times = ["2026-10-25T00:30:00+01:00", "2026-10-25T01:30:00+01:00", "2026-10-25T01:30:00+00:00",
             "2026-10-25T02:30:00+00:00"]
    exam_ids = {}
    for order, index in enumerate((2, 0, 3, 1)):  # imported out of order
        exam = import_scan(records, demo_exam_file(tmp_path, seed=order), mrn="DST1", force_mrn=True,
                           acquired=datetime.fromisoformat(times[index])).exam
        add_ai_row(records, exam.id, index)  # AoP rises with the frame index, so with time
        exam_ids[index] = exam.id
    labor_id = records.exam(exam_ids[0]).labor_id
    timeline = labor_timeline(records, labor_id)
    points = timeline["points"]
    assert [p["exam_id"] for p in points] == [exam_ids[i] for i in range(4)]
    assert [p["hours"] for p in points] == [0.0, 1.0, 2.0, 3.0]
    assert [p["acquired"] for p in points] == times  # shown in the offset each was given
    assert timeline["start"] == times[0] and records.labor(labor_id).start == datetime.fromisoformat(times[0])
    aops = [p["aop_deg"] for p in points]
    assert timeline["trend_deg_per_h"] > 0
    assert "over 2.0 h" in timeline["stall_check"]["reason"]
    assert timeline["stall_check"]["reference_exam_id"] == exam_ids[1]  # the latest exam >= 2 h before 02:30+00:00
    assert timeline["stall_check"]["rise_deg"] == pytest.approx(aops[3] - aops[1], abs=0.01)


def test_naive_times_already_saved_read_back_unchanged_and_mix_with_offset_times(records, tmp_path):
    """An existing database's naive times (the scanner's clock) read back as they were; a time with an offset added
    to the same labour makes every time in it an instant, the naive ones this machine's local time."""
    from datetime import datetime, timedelta

    from records_support import LABOR_START

    first = import_scan(records, demo_exam_file(tmp_path, seed=0)).exam  # DICOM time without an offset
    second = import_scan(records, demo_exam_file(tmp_path, seed=1, hours=1.5)).exam
    row = records._row("SELECT acquired_at FROM exams WHERE id = ?", (first.id,))
    assert row[0] == "2026-03-01T10:00:00" and records.exam(first.id).acquired == LABOR_START
    assert records.exam(first.id).acquired.tzinfo is None
    local = (LABOR_START + timedelta(hours=3)).astimezone()  # aware, this machine's zone and offset
    third = import_scan(records, demo_exam_file(tmp_path, seed=2), acquired=local).exam
    timeline = labor_timeline(records, first.labor_id)
    assert [p["exam_id"] for p in timeline["points"]] == [first.id, second.id, third.id]
    assert [p["hours"] for p in timeline["points"]] == [0.0, 1.5, 3.0]
    assert timeline["points"][2]["acquired"] == local.isoformat(timespec="seconds")


@pytest.fixture
def london(monkeypatch):
    """This workstation's zone is Europe/London (clocks go back at 02:00 BST on 2026-10-25), restored after."""
    import time

    monkeypatch.setenv("TZ", "Europe/London")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_one_rule_orders_and_counts_hours_when_naive_and_offset_times_share_a_labour(london, records, tmp_path):
    """Once any time in a labour has an offset, every time in it is an instant (a naive one this machine's local
    time) for ordering and for hours alike: the naive start 00:00 (BST), naive exam A at 03:00 (GMT) and exam B at
    02:30+00:00 are read B at 3.5 h then A at 4.0 h (the night has 25 hours), and the stall check judges A, the
    latest, not whichever exam comes last in the list."""
    from datetime import datetime

    patient = records.get_or_create_patient("DST2")
    labor = records.create_labor(patient.id, start=datetime(2026, 10, 25, 0, 0))
    acquired = {"early": datetime(2026, 10, 25, 0, 30), "A": datetime(2026, 10, 25, 3, 0),
                "B": datetime.fromisoformat("2026-10-25T02:30+00:00")}
    ids = {}
    for seed, (name, when) in enumerate(acquired.items()):
        exam = import_scan(records, demo_exam_file(tmp_path, seed=seed), mrn="DST2", force_mrn=True,
                           acquired=when, labor_id=labor.id).exam
        add_ai_row(records, exam.id, {"early": 0, "A": 3, "B": 1}[name])
        ids[name] = exam.id
    assert [e.id for e in records.exams(labor.id)] == [ids["early"], ids["B"], ids["A"]]
    timeline = labor_timeline(records, labor.id)
    points = timeline["points"]
    assert [p["exam_id"] for p in points] == [ids["early"], ids["B"], ids["A"]]
    assert [p["hours"] for p in points] == [0.5, 3.5, 4.0]
    check = timeline["stall_check"]
    assert f"to exam {ids['A']} over 3.5 h" in check["reason"] and check["reference_exam_id"] == ids["early"]
    aop = {p["exam_id"]: p["aop_deg"] for p in points}
    assert check["rise_deg"] == pytest.approx(aop[ids["A"]] - aop[ids["early"]], abs=0.01)


def test_stall_check_takes_the_latest_exam_by_hours_whatever_the_order_of_the_points():
    points = [{"exam_id": 1, "hours": 0.0, "aop_deg": 100.0}, {"exam_id": 3, "hours": 4.0, "aop_deg": 101.0},
              {"exam_id": 2, "hours": 3.5, "aop_deg": 120.0}]
    check = stall_check(points, StallRule())
    assert check["reference_exam_id"] == 1 and check["rise_deg"] == 1.0 and check["stalled"] is True
    assert "from exam 1 to exam 3 over 4.0 h" in check["reason"]


def test_the_timeline_reads_the_labours_times_once(records, tmp_path, monkeypatch):
    """``labor_timeline`` reads the labour's times (``Records.labor_reading``, a query of its own) once, for the
    exams' order, and counts the hours by that same reading (it used to read them again)."""
    from workstation.records.store import Records as RecordsClass

    exam_ids = three_exam_labor(records, tmp_path)
    labor_id = records.exam(exam_ids[0]).labor_id
    expected = labor_timeline(records, labor_id)
    calls = []
    read = RecordsClass.labor_reading

    def counted(self, *args, **kwargs):
        calls.append(args)
        return read(self, *args, **kwargs)

    monkeypatch.setattr(RecordsClass, "labor_reading", counted)
    assert labor_timeline(records, labor_id) == expected
    assert len(calls) <= 1, calls
    assert [p["hours"] for p in expected["points"]] == [0.0, 1.5, 3.0]


def test_a_set_start_with_a_utc_offset_makes_naive_exam_times_instants(london, records, tmp_path):
    """The labour's set start belongs to its one reading: a start with an offset (00:00+01:00, BST) beside naive exams
    (this machine's local time: 00:30 BST and 03:00 GMT, the night the clocks go back) counts real hours, 0.5 and
    4.0, as ``Records.labor_reading`` reads them; the exams' times alone would count wall-clock hours, 0.5 and 3.0."""
    from datetime import datetime

    from workstation.records.store import hours_between

    patient = records.get_or_create_patient("DST3")
    labor = records.create_labor(patient.id, start=datetime.fromisoformat("2026-10-25T00:00+01:00"))
    for seed, when in enumerate((datetime(2026, 10, 25, 0, 30), datetime(2026, 10, 25, 3, 0))):
        exam = import_scan(records, demo_exam_file(tmp_path, seed=seed), mrn="DST3", force_mrn=True,
                           acquired=when, labor_id=labor.id).exam
        add_ai_row(records, exam.id, seed)
    labor = records.labor(labor.id)
    reading = records.labor_reading(labor.id)
    points = labor_timeline(records, labor.id)["points"]
    assert [p["hours"] for p in points] == [0.5, 4.0]
    assert [p["hours"] for p in points] == [round(hours_between(labor.start, e.acquired, reading), 4)
                                           for e in records.exams(labor.id)]


def test_the_timelines_order_and_hours_are_the_one_reading_of_the_labours_times(records, tmp_path, monkeypatch):
    """One way to read a labour's times (``Records.labor_reading``): the exams' order and the timeline's hours both
    follow it (a reading of its own in the timeline would not), and the timeline reads the labour's start once
    (``Records.labor`` reads it; ``exams_with_reading`` takes it from there, no query of its own)."""
    from datetime import timedelta

    from workstation.records.store import Records as RecordsClass

    exam_ids = three_exam_labor(records, tmp_path)
    labor_id = records.exam(exam_ids[0]).labor_id
    read = RecordsClass.labor_reading

    def shifted(self, *args, **kwargs):  # a reading that puts the last exam 1 h later than its clock says
        reading = read(self, *args, **kwargs)
        last = records.exam(exam_ids[-1]).acquired
        return lambda moment: reading(moment) + (timedelta(hours=1) if moment == last else timedelta(0))

    monkeypatch.setattr(RecordsClass, "labor_reading", shifted)
    assert [p["hours"] for p in labor_timeline(records, labor_id)["points"]] == [0.0, 1.5, 4.0]
    monkeypatch.undo()

    queries = []
    rows = RecordsClass._rows

    def counted(self, sql, params=()):
        queries.append(sql)
        return rows(self, sql, params)

    monkeypatch.setattr(RecordsClass, "_rows", counted)
    labor_timeline(records, labor_id)
    assert not [q for q in queries if "start_time FROM labors" in q], queries
    # the labour, its patient, its exams, then each exam's measurement rows once
    assert len(queries) == 3 + len(exam_ids), queries
