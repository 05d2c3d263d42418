"""Writing a grey cine as an Ultrasound Multi-frame Image Storage DICOM file.

Used by the demo/synthetic data generator so that demos exercise the same DICOM path as
real scans: Explicit VR Little Endian, MONOCHROME2, Frame Time and Cine Rate, and one 2D
ultrasound region in cm that carries the physical scale.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage,
                         generate_uid)

_UNITS_CM = 3
_SPATIAL_FORMAT_2D = 1
_DATA_TYPE_TISSUE = 1
_FRAME_TIME_TAG = 0x00181063


def write_multiframe_us(
    path: str | os.PathLike,
    frames: np.ndarray,
    *,
    frame_time_ms: float,
    mm_per_px: float,
    region: tuple[int, int, int, int] | None = None,
    patient_id: str,
    patient_name: str,
    study_datetime: datetime,
    manufacturer: str = "Workstation synthetic",
    series_description: str = "",
) -> Path:
    """Write ``frames`` (n, H, W) uint8 grey; ``region`` (x0, y0, x1, y1) inclusive, default the whole frame."""
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.dtype != np.uint8 or 0 in frames.shape:
        raise ValueError(f"frames must be a non-empty (n, H, W) uint8 array, got {frames.dtype} {frames.shape}")
    if not (frame_time_ms > 0 and mm_per_px > 0):
        raise ValueError("frame_time_ms and mm_per_px must be positive")
    n_frames, rows, cols = frames.shape
    x0, y0, x1, y1 = region if region is not None else (0, 0, cols - 1, rows - 1)
    if not (0 <= x0 <= x1 < cols and 0 <= y0 <= y1 < rows):
        raise ValueError(f"region {region} does not fit inside the {cols}x{rows} frame")

    sop_instance_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = UltrasoundMultiFrameImageStorage
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "US"
    ds.Manufacturer = manufacturer
    ds.SeriesDescription = series_description
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.ReferringPhysicianName = ""
    ds.AccessionNumber = ""
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    day, clock = study_datetime.strftime("%Y%m%d"), study_datetime.strftime("%H%M%S.%f")
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = day
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = clock
    ds.AcquisitionDateTime = day + clock

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = n_frames
    ds.FrameIncrementPointer = _FRAME_TIME_TAG
    ds.FrameTime = f"{frame_time_ms:.6g}"
    ds.CineRate = max(1, round(1000.0 / frame_time_ms))
    ds.LossyImageCompression = "00"

    item = Dataset()
    item.RegionSpatialFormat = _SPATIAL_FORMAT_2D
    item.RegionDataType = _DATA_TYPE_TISSUE
    item.RegionFlags = 0
    item.RegionLocationMinX0, item.RegionLocationMinY0 = int(x0), int(y0)
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = int(x1), int(y1)
    item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = _UNITS_CM
    item.PhysicalDeltaX = item.PhysicalDeltaY = float(mm_per_px) / 10.0  # regions are in cm per pixel
    ds.SequenceOfUltrasoundRegions = Sequence([item])

    ds.PixelData = np.ascontiguousarray(frames).tobytes()
    path = Path(path)
    ds.save_as(path, enforce_file_format=True)
    return path
