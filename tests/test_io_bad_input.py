"""Bad input: every unusable file or folder raises InputError with one clear line, quickly."""
from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

from fixtures_io import pydicom_test_file, rewrite, write_small_us
from workstation.errors import InputError
from workstation.io import load

pytestmark = [pytest.mark.timeout(30),  # a hang is a failure too
              pytest.mark.filterwarnings("ignore:End of file reached before delimiter")]


def assert_one_line_input_error(path, match: str) -> str:
    with pytest.raises(InputError, match=match) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def write_header_only(path, rows: int, cols: int, n_frames: int | None = None, pixel_bytes: bytes | None = b"\0\0"):
    """A tiny DICOM whose header claims rows x cols (x n_frames); the pixel data is whatever is given."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = UltrasoundImageStorage, meta.MediaStorageSOPInstanceUID, "US"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if n_frames is not None:
        ds.NumberOfFrames = n_frames
    if pixel_bytes is not None:
        ds.PixelData = pixel_bytes
    ds.save_as(path, enforce_file_format=True)
    return path


def test_missing_path(tmp_path):
    assert_one_line_input_error(tmp_path / "nowhere.dcm", "no such file")


def test_empty_path_string():
    with pytest.raises(InputError, match="no file or folder given"):
        load("")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX only")
def test_a_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "stream.dcm"
    os.mkfifo(fifo)
    assert_one_line_input_error(fifo, "not a regular file")


def test_empty_file(tmp_path):
    (tmp_path / "empty.dcm").write_bytes(b"")
    assert_one_line_input_error(tmp_path / "empty.dcm", "empty")


def test_text_file_named_dcm(tmp_path):
    (tmp_path / "notes.dcm").write_text("Patient was scanned at 10:42.\nNothing to see.\n" * 20)
    assert_one_line_input_error(tmp_path / "notes.dcm", "not a DICOM file")


def test_text_file_without_extension(tmp_path):
    (tmp_path / "README").write_text("hello\n")
    assert_one_line_input_error(tmp_path / "README", "not a DICOM file")


def test_unsupported_extension(tmp_path):
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4\n")
    assert_one_line_input_error(tmp_path / "report.pdf", "unsupported file type '.pdf'")


@pytest.mark.parametrize("keep_fraction", [0.3, 0.9, 0.999])
def test_truncated_uncompressed_dicom(tmp_path, keep_fraction):
    data = write_small_us(tmp_path / "full.dcm", n_frames=5, rows=64, cols=64).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: int(len(data) * keep_fraction)])
    assert_one_line_input_error(tmp_path / "cut.dcm", "cut.dcm: .*truncated")


@pytest.mark.parametrize("name", ["color3d_jpeg_baseline.dcm", "OBXXXX1A_rle_2frame.dcm", "US1_J2KR.dcm"])
def test_truncated_compressed_dicom(tmp_path, name):
    data = pydicom_test_file(name).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) * 2 // 3])
    assert_one_line_input_error(tmp_path / "cut.dcm", "cut.dcm: .*truncated")


def test_truncated_inside_the_header(tmp_path):
    data = write_small_us(tmp_path / "full.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:200])
    assert_one_line_input_error(tmp_path / "cut.dcm", "cut.dcm: not a readable DICOM file")


@pytest.mark.parametrize("rows, cols, n_frames, match", [
    (65_535, 65_535, None, "exceeds the 8192x8192 limit"),  # Rows/Columns (VR US) cannot hold 100000
    (512, 9000, None, "exceeds"),
    (64, 64, 50_000, "frame limit"),
    (0, 64, None, "empty"),
])
def test_absurd_dimensions_are_refused_before_allocating(tmp_path, rows, cols, n_frames, match):
    path = write_header_only(tmp_path / "huge.dcm", rows, cols, n_frames)
    assert_one_line_input_error(path, match)


def _damage_vr(path, tag_and_vr: bytes) -> None:
    """Overwrite the second letter of one element's explicit VR, as a flipped byte on a stick would."""
    data = bytearray(path.read_bytes())
    at = data.find(tag_and_vr)
    assert at > 0, tag_and_vr
    data[at + 5] = 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_required_element_is_one_line_and_a_damaged_optional_one_is_skipped(tmp_path):
    photometric = write_small_us(tmp_path / "photometric.dcm")
    _damage_vr(photometric, b"\x28\x00\x04\x00CS")  # (0028,0004) Photometric Interpretation
    assert "a damaged DICOM header" in assert_one_line_input_error(photometric, "photometric.dcm")
    birth = rewrite(write_small_us(tmp_path / "birth.dcm"), PatientBirthDate="19900102")
    _damage_vr(birth, b"\x10\x00\x30\x00DA")  # (0010,0030) Patient's Birth Date: not needed to show a scan
    cine = load(birth)
    assert cine.n_frames == 3 and cine.info.patient_birth_date is None and cine.info.patient_id == "P001"


def test_zero_frames_and_overflowing_frame_times_are_not_taken_at_their_word(tmp_path):
    zero = rewrite(write_small_us(tmp_path / "zero.dcm"), NumberOfFrames=0)
    assert_one_line_input_error(zero, "declares 0 frames")  # it used to be read as one frame
    vector = rewrite(write_small_us(tmp_path / "vector.dcm"), FrameTimeVector=["0", "1e308", "1e308"],
                     FrameIncrementPointer=0x00181065)
    cine = load(vector)  # the sum overflows: the vector is unusable, Frame Time gives the times instead
    assert cine.frame_time_source == "FrameTime" and cine.times_s == pytest.approx([0.0, 0.04, 0.08])


def test_an_over_long_patient_id_is_text_not_a_bytes_repr(tmp_path):
    path = rewrite(write_small_us(tmp_path / "long.dcm"), PatientID="X" * 70_000)
    assert load(path).info.patient_id == "X" * 70_000


def test_dicom_without_pixel_data(tmp_path):
    path = write_header_only(tmp_path / "nopixels.dcm", 64, 64, pixel_bytes=None)
    assert_one_line_input_error(path, "no pixel data")


def test_pixel_data_shorter_than_the_header_says(tmp_path):
    path = write_header_only(tmp_path / "short.dcm", 64, 64, n_frames=3, pixel_bytes=bytes(64 * 64))
    assert_one_line_input_error(path, "short.dcm")


def test_unsupported_transfer_syntax(tmp_path):
    path = write_small_us(tmp_path / "mpeg.dcm")
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: pydicom has no decoder
    ds.PixelData = encapsulate([bytes(10)] * 3)
    ds.save_as(path, implicit_vr=False, little_endian=True)
    assert_one_line_input_error(path, "MPEG2 .* is not supported")


@pytest.mark.parametrize("mm_per_px", [-1.0, 0.0, 50.0, float("nan")])
def test_bad_manual_calibration(tmp_path, mm_per_px):
    with pytest.raises(InputError, match="manual calibration"):
        load(write_small_us(tmp_path / "ok.dcm"), mm_per_px=mm_per_px)


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    assert_one_line_input_error(tmp_path, "contains no images")


@pytest.mark.parametrize("name", ["broken.png", "broken.jpg", "broken.tif"])
def test_damaged_image(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert_one_line_input_error(tmp_path / name, "cannot be decoded as an image")


def test_a_truncated_image_is_one_line_without_the_decoders_own_warning(tmp_path, capfd):
    """OpenCV writes its own "PNG input buffer is incomplete" warning straight to stderr (below Python): the one
    error line must stand alone, as for every other damaged file."""
    import cv2

    rng = np.random.default_rng(0)
    ok, encoded = cv2.imencode(".png", rng.integers(0, 255, (64, 64), dtype=np.uint8))
    assert ok
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(encoded.tobytes()[: encoded.size // 2])
    capfd.readouterr()
    with pytest.raises(InputError, match="cannot be decoded as an image"):
        load(truncated)
    assert capfd.readouterr().err == ""


def _png_claiming(path, width, height):
    """A PNG whose header claims width x height, with a few bytes of pixel data (a 'decompression bomb')."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("width, height, match", [
    (65535, 65535, "header claims over"),  # OpenCV itself would raise its own error here
    (9000, 100, "9000x100 exceeds the 8192x8192 limit"),  # decoded, this would be allocated first
])
def test_an_oversized_image_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch, width, height, match):
    import cv2

    path = _png_claiming(tmp_path / "big.png", width, height)
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: pytest.fail("decoded before the size was checked"))
    with pytest.raises(InputError, match=match):
        load(path)


@pytest.mark.parametrize("name", ["clip.mp4", "clip.avi"])
def test_damaged_video(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not a video" * 100)
    assert_one_line_input_error(tmp_path / name, name)


def test_bare_dataset_without_preamble_still_loads(tmp_path):
    # Old exports write the data set without the 128-byte preamble and DICM marker.
    path = write_small_us(tmp_path / "full.dcm")
    ds = pydicom.dcmread(path)
    ds.file_meta = FileMetaDataset()  # no group 0002: after the preamble and marker come the data elements
    ds.save_as(tmp_path / "with_preamble", implicit_vr=True, little_endian=True)
    (tmp_path / "bare").write_bytes((tmp_path / "with_preamble").read_bytes()[132:])
    cine = load(tmp_path / "bare")
    assert cine.n_frames == 3 and np.array_equal(cine.frame(1), pydicom.dcmread(path).pixel_array[1])


def test_dicom_with_non_dicom_extension_is_recognised_by_content(tmp_path):
    path = write_small_us(tmp_path / "scan.dat")
    assert load(path).n_frames == 3


def test_corrupt_region_sequence_does_not_stop_loading(tmp_path):
    item = Dataset()
    item.RegionSpatialFormat = 1  # no location, no deltas: unusable, skipped
    path = rewrite(write_small_us(tmp_path / "regions.dcm"), SequenceOfUltrasoundRegions=[item])
    assert load(path).calibration.regions == ()
