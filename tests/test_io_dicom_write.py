"""The synthetic multi-frame writer: a valid Ultrasound Multi-frame file that loads back unchanged."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage

from fixtures_io import synthetic_frames
from workstation.io import load, write_multiframe_us

STUDY_TIME = datetime(2024, 3, 5, 14, 30, 15, 250000)


def test_round_trip_through_load(tmp_path):
    frames = synthetic_frames(n_frames=5, rows=50, cols=70)
    path = write_multiframe_us(tmp_path / "synthetic.dcm", frames, frame_time_ms=33.3, mm_per_px=0.15,
                               region=(5, 4, 64, 45), patient_id="SYN-7", patient_name="Synthetic^Case",
                               study_datetime=STUDY_TIME, series_description="demo")
    cine = load(path)
    assert cine.n_frames == 5 and cine.frame_shape == (50, 70)
    for index in range(5):
        assert np.array_equal(cine.frame(index), frames[index])
    assert cine.frame_time_source == "FrameTime" and cine.fps == pytest.approx(1000 / 33.3)
    lookup = cine.calibration.scale_for([(10, 10), (40, 10)], cine.frame_shape)
    assert lookup.scale.source == "dicom_region" and lookup.scale.length_mm((10, 10), (40, 10)) == pytest.approx(4.5)
    outside = cine.calibration.scale_for([(1, 1), (40, 10)], cine.frame_shape)
    assert outside.scale is None  # the region, not the whole frame, is calibrated
    info = cine.info
    assert (info.patient_id, info.patient_name, info.manufacturer) == ("SYN-7", "Synthetic^Case", "Workstation synthetic")
    assert info.acquisition_source == "AcquisitionDateTime" and info.acquisition_datetime == STUDY_TIME
    assert info.sop_class_name == "Ultrasound Multi-frame Image Storage"


def test_written_file_is_standard(tmp_path):
    path = write_multiframe_us(tmp_path / "s.dcm", synthetic_frames(), frame_time_ms=40, mm_per_px=0.2,
                               patient_id="P", patient_name="N", study_datetime=STUDY_TIME)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPClassUID == UltrasoundMultiFrameImageStorage == ds.file_meta.MediaStorageSOPClassUID
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.Modality == "US"
    assert ds.NumberOfFrames == 3 and float(ds.FrameTime) == 40.0 and ds.CineRate == 25
    region = ds.SequenceOfUltrasoundRegions[0]
    assert (region.RegionSpatialFormat, region.PhysicalUnitsXDirection, region.PhysicalUnitsYDirection) == (1, 3, 3)
    assert region.PhysicalDeltaX == pytest.approx(0.02)  # 0.2 mm = 0.02 cm
    assert (region.RegionLocationMaxX1, region.RegionLocationMaxY1) == (59, 39)  # whole 60x40 frame by default
    assert np.array_equal(ds.pixel_array, synthetic_frames())
    other = write_multiframe_us(tmp_path / "t.dcm", synthetic_frames(), frame_time_ms=40, mm_per_px=0.2,
                                patient_id="P", patient_name="N", study_datetime=STUDY_TIME)
    assert pydicom.dcmread(other).SOPInstanceUID != ds.SOPInstanceUID  # new UIDs every time


@pytest.mark.parametrize("frames, kwargs", [
    (np.zeros((2, 10, 10), np.float32), {}),
    (np.zeros((10, 10), np.uint8), {}),
    (np.zeros((2, 10, 10), np.uint8), {"region": (0, 0, 10, 9)}),
    (np.zeros((2, 10, 10), np.uint8), {"mm_per_px": 0.0}),
    (np.zeros((2, 10, 10), np.uint8), {"frame_time_ms": -5.0}),
])
def test_invalid_arguments_are_refused(tmp_path, frames, kwargs):
    options = dict(frame_time_ms=40.0, mm_per_px=0.2, patient_id="P", patient_name="N", study_datetime=STUDY_TIME)
    options.update(kwargs)
    with pytest.raises(ValueError):
        write_multiframe_us(tmp_path / "bad.dcm", frames, **options)
