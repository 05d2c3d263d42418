"""Review 30, finding 7: reason texts say what they mean for what the user gave. A scan without a PS says "no pubic
symphysis found in this frame" (the label-map wording only where a label map was given: ``workstation measure``); a
GA withheld with its HC gives the HC's reason, never the withheld HC's size (and never in cm)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from records_support import run_cli
from workstation.calibration import Calibration
from workstation.inference.pipeline import apply_plane_policy, keep_ai_biometry_withheld
from workstation.measure import hadlock_ga_weeks, measure_labelmap
from workstation.measure.geometry import MeasurementRefused
from workstation.measure.measurements import IN_LABEL_MAP

SHAPE = (480, 640)


def _head_only(scale=(180, 140)):
    labels = np.zeros(SHAPE, np.uint8)
    cv2.ellipse(labels, (320, 240), scale, 10, 0, 360, 2, -1)
    return labels


def _with_ps(labels):
    labels = labels.copy()
    cv2.rectangle(labels, (40, 60), (140, 90), 1, -1)  # a PS away from the head
    return labels


def test_a_frame_without_a_ps_says_none_was_found_in_this_frame():
    measured = measure_labelmap(_head_only()).to_json()
    assert measured["reasons"]["aop_deg"] == measured["reasons"]["hsd_px"] == "no pubic symphysis found in this frame"
    assert "label map" not in json.dumps(measured["reasons"])
    empty = measure_labelmap(np.zeros(SHAPE, np.uint8)).to_json()
    assert empty["reasons"]["aop_deg"] == "no pubic symphysis or fetal head found in this frame"
    assert empty["reasons"]["hc_px"] == "no fetal head found in this frame"


def test_a_label_map_given_by_the_user_keeps_the_label_map_wording(tmp_path, capsys):
    path = tmp_path / "head.png"
    cv2.imwrite(str(path), _head_only())
    assert run_cli(["measure", str(path), "--mm-per-px", "0.2"]) == 0
    reasons = json.loads(capsys.readouterr().out)["reasons"]
    assert reasons["aop_deg"] == "no pubic symphysis in the label map"
    given = measure_labelmap(np.zeros(SHAPE, np.uint8), found=IN_LABEL_MAP).reasons
    assert given["hc_px"] == "no fetal head in the label map"
    assert given["aop_deg"] == "no pubic symphysis or fetal head in the label map"


def test_the_hadlock_refusal_is_in_mm():
    with pytest.raises(MeasurementRefused) as refused:
        hadlock_ga_weeks(51.0)
    assert str(refused.value) == ("HC 51.0 mm is outside the Hadlock 1984 range (68-360 mm, about 12-42 weeks): no "
                                  "gestational age")


def test_a_ga_withheld_with_its_hc_gives_the_hcs_reason_not_its_size(tmp_path, capsys):
    # A small head (HC ~51 mm at 0.05 mm/px: below Hadlock's range) beside a PS: a transperineal frame, where the plane
    # rule withholds HC; GA must say the same, not "HC 5.1 cm is outside the Hadlock 1984 range".
    small = Calibration.manual_mm_per_px(0.05)
    measured = measure_labelmap(_with_ps(_head_only()), small).to_json()
    assert "Hadlock" in measured["reasons"]["ga_weeks"]  # before the plane rule: the range's refusal
    withheld = apply_plane_policy(measured, "standard_plane")
    plane = withheld["reasons"]["hc_px"]
    assert "axial head plane" in plane and withheld["hc_px"] is None and withheld["ga_weeks"] is None
    for key in ("hc_mm", "bpd_mm", "ofd_mm", "ga_weeks"):
        assert withheld["reasons"][key] == plane, key
    # The same through the AI's biometry checks (no skull echo) and through `workstation measure`.
    echo = keep_ai_biometry_withheld({**measure_labelmap(_head_only(), small).to_json(),
                                      "ai_biometry_withheld": "no fetal skull echo along the outline"})
    assert echo["reasons"]["ga_weeks"] == "no fetal skull echo along the outline"
    path = tmp_path / "ps_and_small_head.png"
    cv2.imwrite(str(path), _with_ps(_head_only()))
    assert run_cli(["measure", str(path), "--mm-per-px", "0.05"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reasons"]["ga_weeks"] == out["reasons"]["hc_px"] and " cm" not in json.dumps(out["reasons"])


def test_a_person_s_own_ellipse_keeps_its_own_ga_reason():
    """Only a withheld HC passes its reason on: an HC shown keeps GA's own refusal (the range), in mm."""
    measured = apply_plane_policy(measure_labelmap(_head_only(), Calibration.manual_mm_per_px(0.05)).to_json(),
                                  "not_transperineal")
    assert measured["hc_mm"] is not None and measured["ga_weeks"] is None
    assert measured["reasons"]["ga_weeks"].startswith(f"HC {measured['hc_mm']:.1f} mm is outside the Hadlock 1984")
