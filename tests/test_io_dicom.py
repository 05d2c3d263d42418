"""DICOM loading: every ultrasound test file opens as uint8 frames, lazily, with its timing and study info."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
import json

import numpy as np
import pytest

from conftest import SHARED_DATA, shared_path
from fixtures_io import pydicom_test_file, rewrite, write_small_us
from workstation.io import Cine, load

# name, frames, array shape of a frame, (frame, row, col) probed, expected value there.
# Values are what the decoded, palette/YBR-converted frame shows (checked by eye: calipers
# are white, grey B-mode has R = G = B, the ExplVR_BigEnd pattern is yellow).
US_TEST_FILES = [
    ("OBXXXX1A.dcm", 1, (600, 800, 3), (0, 290, 459), (255, 255, 255)),  # caliper "+" mark, palette
    ("OBXXXX1A_2frame.dcm", 2, (600, 800, 3), (1, 300, 400), (57, 96, 150)),  # palette colour
    ("OBXXXX1A_expb.dcm", 1, (600, 800, 3), (0, 290, 459), (255, 255, 255)),  # big-endian palette
    ("OBXXXX1A_expb_2frame.dcm", 2, (600, 800, 3), (1, 300, 400), (57, 96, 150)),
    ("OBXXXX1A_rle.dcm", 1, (600, 800, 3), (0, 290, 459), (255, 255, 255)),  # RLE
    ("OBXXXX1A_rle_2frame.dcm", 2, (600, 800, 3), (1, 300, 400), (57, 96, 150)),
    ("JPGLosslessP14SV1_1s_1f_8b.dcm", 1, (768, 1024), (0, 435, 689), 175),  # JPEG lossless grey
    ("US1_J2KI.dcm", 1, (480, 640, 3), (0, 160, 213), (66, 66, 67)),  # JPEG 2000 YBR_ICT
    ("US1_J2KR.dcm", 1, (480, 640, 3), (0, 160, 213), (61, 61, 61)),  # JPEG 2000 lossless YBR_RCT
    ("US1_UNCI.dcm", 1, (480, 640, 3), (0, 160, 213), (66, 66, 67)),
    ("US1_UNCR.dcm", 1, (480, 640, 3), (0, 160, 213), (61, 61, 61)),
    ("color-pl.dcm", 1, (120, 256, 3), (0, 60, 128), (184, 16, 16)),  # RGB planar configuration 1
    ("color-px.dcm", 1, (120, 256, 3), (0, 60, 128), (184, 16, 16)),  # RGB interleaved
    ("color3d_jpeg_baseline.dcm", 120, (480, 640, 3), (119, 160, 213), (23, 23, 23)),  # JPEG baseline YBR_FULL_422
    ("gdcm-US-ALOKA-16.dcm", 1, (480, 640, 3), (0, 60, 48), (141, 141, 141)),  # 16-bit segmented palette
    ("gdcm-US-ALOKA-16_big.dcm", 1, (480, 640, 3), (0, 60, 48), (141, 141, 141)),
    ("ExplVR_BigEnd.dcm", 1, (60, 80, 3), (0, 30, 40), (255, 255, 0)),  # big-endian RGB
    ("examples_jpeg2k.dcm", 1, (480, 640, 3), (0, 160, 213), (61, 61, 61)),
    ("examples_palette.dcm", 1, (350, 800, 3), (0, 175, 400), (1, 1, 1)),
    ("examples_rgb_color.dcm", 1, (240, 320, 3), (0, 80, 106), (71, 71, 71)),
    ("examples_ybr_color.dcm", 30, (240, 320, 3), (29, 80, 106), (10, 10, 10)),
]
LOSSY = {"color3d_jpeg_baseline.dcm", "examples_ybr_color.dcm", "US1_J2KI.dcm"}  # decoders may differ by a level


@pytest.mark.parametrize("name, n_frames, shape, probe, expected", US_TEST_FILES, ids=[row[0] for row in US_TEST_FILES])
def test_every_pydicom_ultrasound_file_decodes_to_uint8(name, n_frames, shape, probe, expected):
    cine = load(pydicom_test_file(name))
    assert cine.n_frames == n_frames == len(cine.frames) == len(cine.times_s)
    assert cine.frame_shape == shape[:2]
    frame_index, row, col = probe
    frame = cine.frame(frame_index)
    assert frame.dtype == np.uint8 and frame.shape == shape
    tolerance = 2 if name in LOSSY else 0
    assert np.abs(frame[row, col].astype(int) - np.array(expected)).max() <= tolerance
    assert cine.gray(frame_index).shape == shape[:2]
    assert cine.info.modality == "US"


@pytest.mark.parametrize("same, reference", [
    ("OBXXXX1A_expb.dcm", "OBXXXX1A.dcm"),  # big-endian palette LUT words must be byte-swapped
    ("OBXXXX1A_rle.dcm", "OBXXXX1A.dcm"),
    ("gdcm-US-ALOKA-16_big.dcm", "gdcm-US-ALOKA-16.dcm"),
    ("US1_J2KR.dcm", "US1_UNCR.dcm"),  # lossless JPEG 2000 equals the uncompressed original
])
def test_other_encodings_of_the_same_image_give_the_same_pixels(same, reference):
    assert np.array_equal(load(pydicom_test_file(same)).frame(0), load(pydicom_test_file(reference)).frame(0))


def _shared_us_files() -> list[str]:
    folder = SHARED_DATA / "dicom_us"
    files = sorted(str(p.relative_to(folder)) for p in folder.glob("**/*.dcm")) if folder.is_dir() else []
    return files or ["(absent)"]  # one placeholder so the test runs and skips with the conftest reason


@pytest.mark.shared_data
@pytest.mark.parametrize("relative", _shared_us_files())
def test_every_shared_ultrasound_file_loads(relative):
    path = shared_path("dicom_us") / relative  # skips with the conftest reason when the data is absent
    cine = load(path)
    frame_count = cine.n_frames
    last = cine.frame(frame_count - 1)
    assert last.dtype == np.uint8 and last.shape[:2] == cine.frame_shape
    assert last.ndim == 2 or last.shape[2] == 3
    assert cine.times_s[0] == 0.0 and np.all(np.diff(cine.times_s) > 0)
    assert 0 < last.mean() < 255  # not blank, not saturated: the conversion to 8 bits worked


def test_frames_are_decoded_lazily_and_cached():
    cine = load(pydicom_test_file("color3d_jpeg_baseline.dcm"))
    # Load decodes only the first and the last frame (to catch truncation), not 120.
    assert cine.frames.decode_count == 2
    middle = cine.frame(60)
    assert cine.frames.decode_count == 3
    assert cine.frame(60) is middle  # cached
    assert not middle.flags.writeable  # callers must copy before drawing on a cached frame
    assert sum(1 for _ in cine.frames[10:13]) == 3
    assert cine.frames[-1].shape == (480, 640, 3)
    with pytest.raises(IndexError):
        cine.frame(120)


def test_cine_rate_and_times_of_a_real_cine():
    cine = load(pydicom_test_file("color3d_jpeg_baseline.dcm"))
    assert cine.frame_time_source == "FrameTime"  # Frame Time 33.333 ms
    assert cine.times_s[0] == 0.0 and cine.times_s[1] == pytest.approx(0.033333)
    assert cine.fps == pytest.approx(30.0, rel=1e-4)


def test_single_frame_has_no_fps():
    cine = load(pydicom_test_file("US1_UNCR.dcm"))
    assert cine.frame_time_source == "single_frame" and cine.fps is None
    assert cine.times_s.tolist() == [0.0]


def test_multiframe_without_timing_uses_the_default_rate():
    cine = load(pydicom_test_file("OBXXXX1A_2frame.dcm"))
    assert cine.frame_time_source == "default"
    assert cine.fps == pytest.approx(25.0)


@pytest.mark.parametrize("changes, source, expected_times", [
    ({}, "FrameTime", [0.0, 0.04, 0.08, 0.12]),
    ({"FrameTime": None, "FrameIncrementPointer": 0x00181065, "FrameTimeVector": [0, 30, 50, 40]},
     "FrameTimeVector", [0.0, 0.03, 0.08, 0.12]),
    # The Frame Increment Pointer says which of the two the sender meant.
    ({"FrameTime": 10, "FrameIncrementPointer": 0x00181065, "FrameTimeVector": [0, 30, 50, 40]},
     "FrameTimeVector", [0.0, 0.03, 0.08, 0.12]),
    ({"FrameTime": None, "FrameTimeVector": [0, 30, 50]}, "CineRate", [0.0, 0.04, 0.08, 0.12]),  # wrong length
    ({"FrameTime": None, "CineRate": 20}, "CineRate", [0.0, 0.05, 0.10, 0.15]),
    ({"FrameTime": None, "CineRate": None, "RecommendedDisplayFrameRate": 10}, "RecommendedDisplayFrameRate",
     [0.0, 0.1, 0.2, 0.3]),
    ({"FrameTime": None, "CineRate": None}, "default", [0.0, 0.04, 0.08, 0.12]),
    ({"FrameTime": "0", "CineRate": None}, "default", [0.0, 0.04, 0.08, 0.12]),  # zero is no timing
])
def test_frame_timing_attributes(tmp_path, changes, source, expected_times):
    path = rewrite(write_small_us(tmp_path / "cine.dcm", n_frames=4), **changes)
    cine = load(path)
    assert cine.frame_time_source == source
    assert cine.times_s == pytest.approx(expected_times)


def test_study_info_from_a_real_file():
    info = load(pydicom_test_file("OBXXXX1A.dcm")).info
    assert info.manufacturer == "Philips Medical Systems"
    assert info.acquisition_source == "AcquisitionDateTime"
    assert info.acquisition_datetime == datetime(2011, 5, 25, 14, 56, 28, 350000)
    assert info.sop_class_name == "Ultrasound Image Storage"
    assert info.transfer_syntax_name == "Explicit VR Little Endian"
    assert info.photometric == "PALETTE COLOR"
    as_json = json.loads(json.dumps(info.to_dict()))
    assert as_json["acquisition_datetime"] == "2011-05-25T14:56:28.350000"


@pytest.mark.parametrize("changes, source, expected", [
    ({"AcquisitionDateTime": None}, "AcquisitionDate", datetime(2024, 3, 5, 14, 30, 15, 250000)),
    ({"AcquisitionDateTime": None, "AcquisitionDate": None, "ContentTime": "0815"}, "ContentDate",
     datetime(2024, 3, 5, 8, 15)),
    ({"AcquisitionDateTime": None, "AcquisitionDate": None, "ContentDate": None, "StudyTime": None}, "StudyDate",
     datetime(2024, 3, 5)),
    # A UTC offset the file gives is kept (the time is then an absolute instant), its own or TimezoneOffsetFromUTC.
    ({"AcquisitionDateTime": "20240305143015+0100"}, "AcquisitionDateTime",
     datetime(2024, 3, 5, 14, 30, 15, tzinfo=timezone(timedelta(hours=1)))),
    ({"AcquisitionDateTime": "20240305143015", "TimezoneOffsetFromUTC": "-0500"}, "AcquisitionDateTime",
     datetime(2024, 3, 5, 14, 30, 15, tzinfo=timezone(timedelta(hours=-5)))),
    ({"AcquisitionDateTime": "20240305143015+0000", "TimezoneOffsetFromUTC": "-0500"}, "AcquisitionDateTime",
     datetime(2024, 3, 5, 14, 30, 15, tzinfo=timezone.utc)),
    ({"AcquisitionDateTime": None, "TimezoneOffsetFromUTC": "+0100"}, "AcquisitionDate",
     datetime(2024, 3, 5, 14, 30, 15, 250000, tzinfo=timezone(timedelta(hours=1)))),
    ({"AcquisitionDateTime": None, "TimezoneOffsetFromUTC": "soon"}, "AcquisitionDate",
     datetime(2024, 3, 5, 14, 30, 15, 250000)),  # an unreadable offset is no offset: the scanner's clock
    ({"AcquisitionDateTime": None, "AcquisitionDate": None, "ContentDate": None, "StudyDate": None}, "none", None),
])
def test_acquisition_datetime_fallbacks(tmp_path, changes, source, expected):
    path = rewrite(write_small_us(tmp_path / "cine.dcm"), PatientBirthDate="19900102", **changes)
    info = load(path).info
    assert info.acquisition_source == source
    assert info.acquisition_datetime == expected
    assert expected is None or info.acquisition_datetime.utcoffset() == expected.utcoffset()
    assert info.patient_birth_date == date(1990, 1, 2)
    assert info.patient_id == "P001" and info.patient_name == "Doe^Jane"


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_a_malformed_optional_value_does_not_stop_loading(tmp_path):
    path = rewrite(write_small_us(tmp_path / "cine.dcm"), AcquisitionDateTime="yesterday", PatientBirthDate="1990")
    cine = load(path)
    assert isinstance(cine, Cine)
    assert cine.info.acquisition_source == "AcquisitionDate"
    assert cine.info.patient_birth_date is None
