"""DICOM reader: header, timing and calibration at load; pixels one frame at a time.

Load reads the header only (pixel data is deferred, not read), checks the declared size
against the limits, builds the palette table if there is one, then decodes the first
and the last frame: that catches a truncated or undecodable file at load, with a clear
message, instead of in the middle of playback. Later frames are decoded from the file
path when asked for (``pydicom.pixels.pixel_array(path, index=i)``), so memory holds the
header and a few frames, never the whole cine.

Output is always uint8: palette colour goes through an 8-bit RGB table, YBR data is
converted to RGB by pydicom, deeper grey data is scaled by its Bits Stored, MONOCHROME1
is inverted.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, get_decoder, pixel_array
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.valuerep import DA, DT, TM

from workstation.calibration import Calibration, Scale, UltrasoundRegion
from workstation.errors import InputError
from workstation.io.cine import DEFAULT_FPS, Cine, FrameSequence, StudyInfo, times_at_fps
from workstation.io.pixels import check_dimensions, to_uint8
from workstation.io.text import clean_text

# Large elements (pixel data, big LUTs) are not read at load; pydicom reads them from the file if asked.
_DEFER_SIZE = "256 KB"
_FRAME_TIME_VECTOR_TAG = 0x00181065


def load_dicom(path: Path) -> Cine:
    """Load a DICOM file as a lazily decoded :class:`Cine` (raises InputError for anything unusable)."""
    try:
        return _load_dicom(path)
    except InputError:
        raise
    except Exception as exc:  # pydicom converts an element when it is first read: a damaged one fails there
        raise InputError(f"{path.name}: a damaged DICOM header ({_first_line(exc)})") from None


def _load_dicom(path: Path) -> Cine:
    name = path.name
    ds = _read_header(path)
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise InputError(f"{name}: float pixel data is not supported (not an ultrasound image)")
        raise InputError(f"{name}: the DICOM file has no pixel data (a report or a presentation state, or a file "
                         f"cut short before its pixels?)")

    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    if rows is None or cols is None:
        raise InputError(f"{name}: the DICOM header lacks Rows or Columns")
    # No Number of Frames: one frame. A value of 0 (or an unreadable one) is refused below, never read as 1.
    n_frames = _int(ds, "NumberOfFrames") if "NumberOfFrames" in ds else 1
    if n_frames is None:
        raise InputError(f"{name}: the DICOM header's Number of Frames is not a number")
    check_dimensions(name, rows, cols, n_frames)
    samples = _int(ds, "SamplesPerPixel") or 1
    if samples not in (1, 3):
        raise InputError(f"{name}: {samples} samples per pixel is not supported (only grey or colour)")

    transfer_syntax = _transfer_syntax(ds)
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        raise InputError(f"{name}: the transfer syntax {transfer_syntax.name} is not supported") from None
    if not decoder.is_available:
        raise InputError(f"{name}: no decoder is installed for {transfer_syntax.name} "
                         f"(pylibjpeg and its plugins are required)")

    frames = DicomFrames(path, ds, transfer_syntax, n_frames, (rows, cols))
    # Decode the first frame (shown at once) and the last: a truncated file fails on its last
    # frame, and should fail here with a clear message rather than during playback.
    frames[0]
    frames[n_frames - 1]

    times, source = _frame_times(ds, n_frames)
    return Cine(frames=frames, times_s=times, frame_time_source=source, calibration=_calibration(ds, rows, cols),
                info=_study_info(ds, transfer_syntax), source=path)


def _read_header(path: Path) -> Dataset:
    try:
        ds = pydicom.dcmread(path, defer_size=_DEFER_SIZE, force=not _has_dicm_marker(path))
    except Exception as exc:  # pydicom raises many types for damaged files; the user needs one message
        raise InputError(f"{path.name}: not a readable DICOM file ({_first_line(exc)})") from None
    if len(ds) == 0:
        raise InputError(f"{path.name}: {_why_empty(path)}")
    return ds


def _why_empty(path: Path) -> str:
    """pydicom returns an empty data set when encapsulated pixel data ends early: tell that apart."""
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:
        header = None
    if header is not None and len(header) > 0:
        return "the file is truncated (its pixel data ends early)"
    return "not a readable DICOM file (no data elements)"


def _has_dicm_marker(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(132)[128:132] == b"DICM"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _transfer_syntax(ds: Dataset) -> UID:
    uid = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if uid:
        return UID(uid)
    # A bare dataset without file meta: use the encoding pydicom detected while reading it.
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


class DicomFrames(FrameSequence):
    """Frames of one DICOM file, decoded from its path on demand."""

    def __init__(self, path: Path, ds: Dataset, transfer_syntax: UID, n_frames: int, frame_shape: tuple[int, int]):
        super().__init__(n_frames, frame_shape)
        self._path = str(path)
        self._transfer_syntax = transfer_syntax
        self._photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
        self._bits_stored = _int(ds, "BitsStored") or _int(ds, "BitsAllocated") or 8
        self._signed = _int(ds, "PixelRepresentation") == 1
        self._palette = _palette_table(ds, path.name) if self._photometric == "PALETTE COLOR" else None

    def _decode(self, index: int) -> np.ndarray:
        try:
            values = pixel_array(self._path, index=index, transfer_syntax_uid=self._transfer_syntax)
        except Exception as exc:  # decoder errors come in many types; report one line with the frame
            raise InputError(f"{Path(self._path).name}: frame {index} cannot be decoded, the file may be truncated "
                             f"or damaged ({_first_line(exc)})") from None
        expected = self.frame_shape
        if values.shape[:2] != expected:
            raise InputError(f"{Path(self._path).name}: frame {index} decodes to {values.shape[:2]}, "
                             f"the header says {expected}")
        return self._to_display(values)

    def _to_display(self, values: np.ndarray) -> np.ndarray:
        if self._palette is not None:
            first_mapped, table = self._palette
            indices = np.clip(values.astype(np.int64) - first_mapped, 0, len(table) - 1)
            return table[indices]
        frame = to_uint8(values, self._bits_stored, self._signed)
        if self._photometric == "MONOCHROME1":  # MONOCHROME1: 0 is white
            frame = 255 - frame
        return np.ascontiguousarray(frame)


def _palette_table(ds: Dataset, name: str) -> tuple[int, np.ndarray]:
    """(first mapped value, uint8 RGB table of shape (entries, 3)) for PALETTE COLOR data.

    Tables with 16-bit entries are scaled to 8 bits by shifting (the LUT's bit depth), except
    when every entry is <= 255: PS3.3 C.7.6.3.1.5 notes 8-bit entries stored in 16 bits.
    """
    try:
        entries, first_mapped, _bits = (int(v) for v in ds.RedPaletteColorLookupTableDescriptor)
        entries = entries or 65536  # 0 means 2**16 entries
        if "RedPaletteColorLookupTableData" in ds:
            # Read the words ourselves: pydicom 3.0 ignores big-endian byte order for non-segmented LUT data.
            _, little = ds.original_encoding
            channels = []
            for keyword in ("RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
                            "BluePaletteColorLookupTableData"):
                raw = bytes(ds[keyword].value)
                dtype = np.uint8 if len(raw) == entries else np.dtype("<u2" if little is not False else ">u2")
                channels.append(np.frombuffer(raw, dtype=dtype)[:entries])
            table = np.stack(channels, axis=-1).astype(np.int64)
        else:  # segmented LUTs: pydicom expands them correctly for both byte orders
            lookup_values = np.arange(first_mapped, first_mapped + entries)
            lookup_values = lookup_values.astype(np.uint16 if first_mapped >= 0 else np.int32)
            table = apply_color_lut(lookup_values, ds).astype(np.int64)[:, :3]
    except Exception as exc:
        raise InputError(f"{name}: the palette colour table cannot be read ({_first_line(exc)})") from None
    if table.max(initial=0) > 255:
        table = table >> 8
    return first_mapped, np.ascontiguousarray(table.astype(np.uint8))


def _frame_times(ds: Dataset, n_frames: int) -> tuple[np.ndarray, str]:
    """Frame times in seconds and which attribute gave them (see the cine module for the default)."""
    if n_frames == 1:
        return np.zeros(1), "single_frame"
    frame_time_ms = _float(ds, "FrameTime")
    vector = _frame_time_vector(ds, n_frames)
    pointer = ds.get("FrameIncrementPointer")
    pointers = {int(t) for t in (pointer if isinstance(pointer, (list, MultiValue)) else [pointer]) if t is not None}
    # The Frame Increment Pointer names the attribute the sender meant; otherwise Frame Time comes first.
    if vector is not None and (_FRAME_TIME_VECTOR_TAG in pointers or not (frame_time_ms and frame_time_ms > 0)):
        return vector, "FrameTimeVector"
    if frame_time_ms and frame_time_ms > 0:
        return times_at_fps(n_frames, 1000.0 / frame_time_ms), "FrameTime"
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        fps = _float(ds, keyword)
        if fps and 0 < fps <= 10_000:
            return times_at_fps(n_frames, fps), keyword
    return times_at_fps(n_frames, DEFAULT_FPS), "default"


def _frame_time_vector(ds: Dataset, n_frames: int) -> np.ndarray | None:
    """Times from Frame Time Vector: increments in ms between frames, the first entry 0."""
    try:
        increments = np.asarray([float(v) for v in ds.get("FrameTimeVector") or []], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if len(increments) != n_frames or not np.all(np.isfinite(increments)) or np.any(increments[1:] < 0):
        return None
    with np.errstate(over="ignore"):
        times = np.cumsum(increments) - increments[0]
    if not np.all(np.isfinite(times)):  # increments so large their sum overflows: no usable timing
        return None
    return times / 1000.0 if times[-1] > 0 else None


def _calibration(ds: Dataset, rows: int, cols: int) -> Calibration:
    regions = []
    for index, item in enumerate(ds.get("SequenceOfUltrasoundRegions") or []):
        values = [_int(item, k) for k in ("RegionLocationMinX0", "RegionLocationMinY0", "RegionLocationMaxX1",
                                          "RegionLocationMaxY1", "RegionSpatialFormat", "RegionDataType",
                                          "PhysicalUnitsXDirection", "PhysicalUnitsYDirection")]
        deltas = [_float(item, k) for k in ("PhysicalDeltaX", "PhysicalDeltaY")]
        if None in values or None in deltas:
            continue  # an incomplete region cannot calibrate anything; its index stays its sequence position
        x0, y0, x1, y1 = values[:4]
        # Some scanners write the max corner as an exclusive bound, one past the last pixel (Philips
        # OBXXXX1A: x1 = 800 on an 800-column image). Clamp exactly that case; a region further
        # outside the frame (a resized file) is kept as written so the calibration refuses it.
        x1 = cols - 1 if x1 == cols else x1
        y1 = rows - 1 if y1 == rows else y1
        regions.append(UltrasoundRegion(index, x0, y0, x1, y1, *values[4:], *deltas))
    pixel_spacing = None
    for keyword, source in (("PixelSpacing", "pixel_spacing"), ("ImagerPixelSpacing", "imager_pixel_spacing")):
        spacing = _pair(ds, keyword)
        if spacing is not None and spacing[0] > 0 and spacing[1] > 0:
            row_mm, col_mm = spacing
            tag = ds[keyword].tag
            pixel_spacing = Scale(mm_per_px_x=col_mm, mm_per_px_y=row_mm, source=source,
                                  detail=f"{keyword} ({tag.group:04X},{tag.element:04X})")
            break
    return Calibration(regions=tuple(regions), pixel_spacing=pixel_spacing)


def _study_info(ds: Dataset, transfer_syntax: UID) -> StudyInfo:
    acquired, acquisition_source = _acquisition_datetime(ds)
    sop_class = _get(ds, "SOPClassUID")
    problem = _unreadable_dates(ds) if acquired is None else None
    return StudyInfo(
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        patient_birth_date=_date(_get(ds, "PatientBirthDate")),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        acquisition_datetime=acquired,
        acquisition_source=acquisition_source,
        acquisition_problem=problem,
        manufacturer=_text(ds, "Manufacturer"),
        model_name=_text(ds, "ManufacturerModelName"),
        modality=_text(ds, "Modality"),
        sop_class_name=clean_text(UID(sop_class).name) if sop_class else None,
        transfer_syntax_name=clean_text(transfer_syntax.name),
        photometric=_text(ds, "PhotometricInterpretation"),
    )


def _acquisition_datetime(ds: Dataset) -> tuple[datetime | None, str]:
    """The first usable of AcquisitionDateTime, Acquisition/Content/Study Date + Time.

    A UTC offset is kept: the date-time's own (``...+0100``), else the file's TimezoneOffsetFromUTC (which DICOM
    applies to every date and time in the file); the time is then an absolute instant. Without either it is naive,
    the scanner's wall clock (see ``workstation.records.store.scanner_time``)."""
    offset = _utc_offset(_get(ds, "TimezoneOffsetFromUTC"))
    value = _datetime(_get(ds, "AcquisitionDateTime"))
    if value is not None:
        return _with_offset(value, offset), "AcquisitionDateTime"
    for prefix in ("Acquisition", "Content", "Study"):
        day = _date(_get(ds, f"{prefix}Date"))
        if day is not None:
            clock = _time(_get(ds, f"{prefix}Time"))
            moment = datetime.combine(day, clock) if clock else datetime.combine(day, datetime.min.time())
            return _with_offset(moment, offset), f"{prefix}Date"
    return None, "none"


# The date attributes an acquisition time is looked for in (:func:`_acquisition_datetime`).
_DATE_KEYWORDS = ("AcquisitionDateTime", "AcquisitionDate", "ContentDate", "StudyDate")


def _unreadable_dates(ds: Dataset) -> str | None:
    """Where no acquisition time could be read: the date attributes the file has that cannot be read, in one phrase
    ("its dates cannot be read: StudyDate '20241399', AcquisitionDateTime 'garbage'"); None where it has none (no
    date at all is no sign of damage)."""
    bad = []
    for keyword in _DATE_KEYWORDS:
        value = _get(ds, keyword)
        text = "" if value is None else str(value).strip()
        if text:
            bad.append(f"{keyword} {clean_text(text)[:40]!r}")
    return None if not bad else f"its dates cannot be read: {', '.join(bad)}"


def _with_offset(moment: datetime, offset: timezone | None) -> datetime:
    return moment if moment.tzinfo is not None or offset is None else moment.replace(tzinfo=offset)


def _utc_offset(value) -> timezone | None:
    """TimezoneOffsetFromUTC (``+HHMM`` / ``-HHMM``) as a fixed offset, or None where absent or unreadable."""
    text = "" if value is None else str(value).strip()
    if len(text) != 5 or text[0] not in "+-" or not text[1:].isdigit():
        return None
    hours, minutes = int(text[1:3]), int(text[3:5])
    if hours > 14 or minutes > 59:
        return None
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


# Tolerant accessors: a malformed value in an optional attribute must not stop a scan from loading.

def _get(ds: Dataset, keyword: str):
    """An optional attribute's value, or None where it is absent or cannot be read (a damaged element)."""
    try:
        return ds.get(keyword)
    except Exception:
        return None


def _text(ds: Dataset, keyword: str) -> str | None:
    """An attribute's text, its control characters replaced (``workstation.io.text.clean_text``): it is printed and
    put in reports."""
    value = _get(ds, keyword)
    if isinstance(value, (bytes, bytearray)):  # an over-long value pydicom kept as UN
        value = bytes(value).decode("latin-1", errors="replace")
    return clean_text(None if value is None else str(value))


def _float(ds: Dataset, keyword: str) -> float | None:
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        number = float(value[0] if isinstance(value, (list, tuple, MultiValue)) else value)
    except Exception:
        return None
    return number if np.isfinite(number) else None


def _int(ds: Dataset, keyword: str) -> int | None:
    number = _float(ds, keyword)
    return int(number) if number is not None else None


def _pair(ds: Dataset, keyword: str) -> tuple[float, float] | None:
    try:
        value = ds.get(keyword)
        if value is None or len(value) != 2:
            return None
        return float(value[0]), float(value[1])
    except Exception:
        return None


def _date(value) -> date | None:
    try:
        parsed = DA(str(value).strip()) if value not in (None, "") else None
    except Exception:
        return None
    return date(parsed.year, parsed.month, parsed.day) if parsed else None


def _time(value):
    try:
        parsed = TM(str(value).strip()) if value not in (None, "") else None
        return parsed.replace(tzinfo=None) if parsed is not None else None
    except Exception:
        return None


def _datetime(value) -> datetime | None:
    """A DICOM DT as a plain datetime, its UTC offset kept where it has one."""
    try:
        parsed = DT(str(value).strip()) if value not in (None, "") else None
        if parsed is None:
            return None
        return datetime(parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute, parsed.second,
                        parsed.microsecond, tzinfo=parsed.tzinfo)
    except Exception:
        return None
