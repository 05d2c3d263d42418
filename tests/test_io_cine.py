"""The Cine type itself: frames in memory, grey conversion, fps, validation, JSON-safe study info."""
from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from workstation.calibration import Calibration
from workstation.io import ArrayFrames, Cine, StudyInfo
from workstation.io.pixels import to_uint8


def make_cine(frames, times) -> Cine:
    return Cine(frames=ArrayFrames(frames), times_s=np.asarray(times), frame_time_source="default",
                calibration=Calibration(), info=StudyInfo(), source=Path("memory"))


def test_gray_uses_bt601_weights():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 100  # pure red 100 -> 0.299 * 100
    cine = make_cine([rgb, rgb], [0.0, 0.04])
    assert cine.gray(0).shape == (2, 3) and int(cine.gray(0)[0, 0]) == 30
    assert cine.frame_shape == (2, 3) and cine.fps == pytest.approx(25.0)


def test_irregular_times_give_the_mean_rate():
    cine = make_cine([np.zeros((2, 2), np.uint8)] * 3, [0.0, 0.03, 0.1])
    assert cine.fps == pytest.approx(20.0)


def test_times_must_match_the_frames():
    with pytest.raises(ValueError):
        make_cine([np.zeros((2, 2), np.uint8)] * 3, [0.0, 0.04])


def test_frames_are_read_only_copies():
    source = np.zeros((2, 2), np.uint8)
    cine = make_cine([source], [0.0])
    with pytest.raises(ValueError):
        cine.frame(0)[0, 0] = 1
    source[0, 0] = 7  # the caller's array changing afterwards does not change the cine
    assert cine.frame(0)[0, 0] == 0
    assert cine.fps is None


def test_study_info_to_dict_is_json_safe():
    info = StudyInfo(patient_id="1", patient_birth_date=date(1990, 1, 2),
                     acquisition_datetime=datetime(2024, 1, 2, 3, 4, 5), acquisition_source="StudyDate")
    data = json.loads(json.dumps(info.to_dict()))
    assert data["patient_birth_date"] == "1990-01-02" and data["acquisition_datetime"] == "2024-01-02T03:04:05"
    assert data["manufacturer"] is None


@pytest.mark.parametrize("values, bits, signed, expected", [
    (np.array([0, 4095], np.uint16), 12, False, [0, 255]),
    (np.array([0, 65535, 256], np.uint16), 16, False, [0, 255, 1]),
    (np.array([-2048, 2047], np.int16), 12, True, [0, 255]),
    (np.array([0, 1], np.uint8), 1, False, [0, 255]),
    (np.array([0.0, 0.5, 1.0], np.float32), 8, False, [0, 128, 255]),
])
def test_to_uint8_scales_by_bit_depth(values, bits, signed, expected):
    assert to_uint8(values, bits, signed).tolist() == expected
