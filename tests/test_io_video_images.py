"""Video files, still images and folders of images load as cines with the expected frames and timing."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from workstation.errors import InputError
from workstation.io import DEFAULT_FPS, load

# Codecs opencv-python-headless can write here: MJPG in .avi and mp4v in .mp4 (avc1/H.264 has no encoder).
VIDEO_FORMATS = [(".avi", "MJPG"), (".mp4", "mp4v")]


def write_video(path: Path, fourcc: str, frames: list[np.ndarray], fps: float = 20.0) -> Path:
    """Frames are RGB (H, W, 3); OpenCV wants BGR."""
    rows, cols = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (cols, rows))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_a_one_frame_video_loads_and_its_frame_is_read_again(tmp_path):
    frame = np.full((48, 64, 3), 120, np.uint8)
    cine = load(write_video(tmp_path / "one.avi", "MJPG", [frame]))
    assert cine.n_frames == 1
    for _ in range(2):  # shown, then analysed: it used to fail on the second read (no seek back to 0)
        assert cine.frame(0).shape == (48, 64) and abs(int(cine.frame(0).mean()) - 120) <= 3


def grey_ramp_frames(n: int = 12, rows: int = 48, cols: int = 64) -> list[np.ndarray]:
    """Flat grey frames, frame k at level 20 k: each frame identifiable after lossy coding."""
    return [np.full((rows, cols, 3), 20 * k, np.uint8) for k in range(n)]


@pytest.mark.parametrize("extension, fourcc", VIDEO_FORMATS)
def test_grey_video_loads_lazily_as_grey_frames(tmp_path, extension, fourcc):
    path = write_video(tmp_path / f"clip{extension}", fourcc, grey_ramp_frames())
    cine = load(path)
    assert cine.n_frames == 12 and cine.frame_shape == (48, 64)
    assert cine.frame_time_source == "video" and cine.fps == pytest.approx(20.0)
    assert cine.times_s[:3] == pytest.approx([0.0, 0.05, 0.10])
    assert cine.info.acquisition_source == "file_mtime" and cine.info.acquisition_datetime is not None
    # Random access in any order, including backwards (seek) and a short skip forward.
    for index in (7, 2, 3, 11, 0, 5):
        frame = cine.frame(index)
        assert frame.dtype == np.uint8 and frame.shape == (48, 64)
        assert abs(float(frame.mean()) - 20 * index) <= 4, index
    cine.close()


@pytest.mark.parametrize("extension, fourcc", VIDEO_FORMATS)
def test_colour_video_stays_rgb(tmp_path, extension, fourcc):
    frames = grey_ramp_frames(6)
    for frame in frames:
        frame[8:40, 8:56] = (200, 30, 30)  # a red block: colour Doppler-like content, in RGB order
    cine = load(write_video(tmp_path / f"colour{extension}", fourcc, frames))
    frame = cine.frame(3)
    assert frame.shape == (48, 64, 3)
    red, green, blue = frame[24, 32].astype(int)
    assert red > 150 and green < 80 and blue < 80  # RGB, not BGR
    assert cine.gray(3).shape == (48, 64)
    cine.close()


def test_frames_iterate_in_order(tmp_path):
    cine = load(write_video(tmp_path / "clip.avi", "MJPG", grey_ramp_frames(5)))
    means = [float(f.mean()) for f in cine.frames]
    assert len(means) == 5 and means == sorted(means)


@pytest.mark.parametrize("extension", [".png", ".jpg", ".tif", ".bmp"])
def test_rgb_image_is_a_one_frame_cine(tmp_path, extension):
    image = np.zeros((30, 40, 3), np.uint8)
    image[:, :20] = (250, 10, 10)  # red left half (RGB)
    path = tmp_path / f"still{extension}"
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cine = load(path)
    assert cine.n_frames == 1 and cine.frame_time_source == "single_frame" and cine.fps is None
    frame = cine.frame(0)
    assert frame.shape == (30, 40, 3) and frame.dtype == np.uint8
    tolerance = 12 if extension == ".jpg" else 0
    assert np.abs(frame[15, 5].astype(int) - [250, 10, 10]).max() <= tolerance
    assert cine.calibration.source == "none"


def test_grey_png_stays_2d(tmp_path):
    image = np.arange(30 * 40, dtype=np.uint32).reshape(30, 40).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "grey.png"), image)
    frame = load(tmp_path / "grey.png").frame(0)
    assert frame.shape == (30, 40) and np.array_equal(frame, image)


def test_16_bit_png_is_scaled_to_8_bits(tmp_path):
    image = np.array([[0, 256, 65535, 32768]], np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), image)
    frame = load(tmp_path / "deep.png").frame(0)
    assert frame.dtype == np.uint8 and frame.tolist() == [[0, 1, 255, 128]]


def test_rgba_png_drops_alpha(tmp_path):
    bgra = np.zeros((10, 10, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 200, 50, 0  # blue 200, red 50, fully transparent
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    frame = load(tmp_path / "alpha.png").frame(0)
    assert frame.shape == (10, 10, 3) and frame[0, 0].tolist() == [50, 0, 200]


def test_image_with_manual_calibration(tmp_path):
    cv2.imwrite(str(tmp_path / "still.png"), np.zeros((20, 20), np.uint8))
    cine = load(tmp_path / "still.png", mm_per_px=0.5)
    assert cine.calibration.scale_for([(0, 0), (4, 0)], cine.frame_shape).scale.length_mm((0, 0), (4, 0)) == 2.0


def test_folder_of_images_is_a_cine_in_natural_order(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in (1, 2, 10, 3):
        cv2.imwrite(str(folder / f"frame{k}.png"), np.full((16, 24), k, np.uint8))
    (folder / "notes.txt").write_text("not an image")  # ignored
    cine = load(folder)
    assert cine.n_frames == 4 and cine.frame_shape == (16, 24)
    assert [int(f[0, 0]) for f in cine.frames] == [1, 2, 3, 10]  # frame10 after frame3
    assert cine.frame_time_source == "default" and cine.fps == pytest.approx(DEFAULT_FPS)
    assert cine.info.acquisition_source == "file_mtime"


def test_folder_images_of_different_sizes_are_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((16, 24), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((16, 25), np.uint8))
    with pytest.raises(InputError, match="share one size"):
        load(tmp_path)


def test_folder_mixing_grey_and_colour_is_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((16, 24), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((16, 24, 3), np.uint8))
    with pytest.raises(InputError, match="colour"):
        load(tmp_path)
