"""workstation.measure on hand-built label maps whose AoP, HSD and HC are known analytically, plus edge cases.

Shapes are rasterised by the pixel-centre rule (a pixel belongs to a shape when its centre does), so the expected
values come from the continuous shapes, not from the code under test.
"""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from workstation.calibration import Calibration, Scale, UltrasoundRegion
from workstation.errors import InputError
from workstation.measure.regions import bounding_box, check_labelmap, edge_points, largest_component, region_pixels
from workstation.measure import (AoPLines, Ellipse, Geometry, MeasurementRefused, PSAxis, aop_from_points,
                                 ellipse_in_mm, ellipse_measurements, fit_head_ellipse, hadlock_ga_weeks,
                                 aop_of_labelmap, hsd_from_points, load_labelmap, measure_labelmap, ramanujan_perimeter, recompute,
                                 tangent_point_to_head)

CONTRACT_KEYS = ("aop_deg", "hsd_px", "hsd_mm", "hc_px", "hc_mm", "bpd_mm", "ofd_mm", "ga_weeks", "geometry", "reasons")


def unit(angle_deg: float) -> np.ndarray:
    return np.array([math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))])


def grid(shape, aspect: float = 1.0):
    """Pixel centres in units of a column's width; a row is ``aspect`` columns tall (non-square pixels)."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    return xs.astype(float), ys.astype(float) * aspect


def draw_rectangle(labels, centre, axis_deg, length, width, value, aspect: float = 1.0):
    xs, ys = grid(labels.shape, aspect)
    e = unit(axis_deg)
    along = (xs - centre[0]) * e[0] + (ys - centre[1]) * e[1]
    across = -(xs - centre[0]) * e[1] + (ys - centre[1]) * e[0]
    labels[(np.abs(along) <= length / 2) & (np.abs(across) <= width / 2)] = value


def draw_ellipse(labels, centre, a, b, angle_deg, value, aspect: float = 1.0):
    xs, ys = grid(labels.shape, aspect)
    e = unit(angle_deg)
    u = (xs - centre[0]) * e[0] + (ys - centre[1]) * e[1]
    v = -(xs - centre[0]) * e[1] + (ys - centre[1]) * e[0]
    labels[(u / a) ** 2 + (v / b) ** 2 <= 1.0] = value


PS_LENGTH, PS_WIDTH, HEAD_DISTANCE, HEAD_RADIUS = 80.0, 16.0, 150.0, 70.0


def transperineal_scene(axis_deg: float, head_turn_deg: float, shape=(500, 500), aspect: float = 1.0):
    """A PS rectangle with its inferior end at the frame centre and a round head whose centre lies at
    ``HEAD_DISTANCE`` from that end, ``head_turn_deg`` away from the ray to the superior end. With ``aspect`` the
    scene is drawn in the patient on pixels whose rows are ``aspect`` times as tall as their columns are wide; the
    points returned are in the patient (column widths)."""
    labels = np.zeros(shape, np.uint8)
    inferior = np.array([shape[1] / 2, shape[0] / 2 * aspect])
    to_superior = unit(axis_deg)
    superior = inferior + PS_LENGTH * to_superior
    draw_rectangle(labels, (inferior + superior) / 2, axis_deg, PS_LENGTH, PS_WIDTH, 1, aspect)
    head_centre = inferior + HEAD_DISTANCE * unit(axis_deg + head_turn_deg)
    draw_ellipse(labels, head_centre, HEAD_RADIUS, HEAD_RADIUS, 0.0, 2, aspect)
    return labels, inferior, superior, head_centre


# (PS axis direction from inferior to superior end, turn from that ray to the head centre); signs of the turn put
# the head on either side of the PS, axis angles cover all four quadrants.
SCENES = [(0, 100), (30, -105), (75, 120), (140, -130), (220, 110), (300, -100), (190, 95)]


@pytest.mark.parametrize("axis_deg,head_turn_deg", SCENES)
def test_aop_matches_the_analytic_tangent_to_a_round_head(axis_deg, head_turn_deg):
    labels, inferior, superior, _ = transperineal_scene(axis_deg, head_turn_deg)
    m = measure_labelmap(labels)
    # Tangents from a point at distance d to a circle of radius r leave at +-asin(r/d) from the bearing of its centre;
    # the AoP is the larger angle with the ray to the superior end.
    expected = abs(head_turn_deg) + math.degrees(math.asin(HEAD_RADIUS / HEAD_DISTANCE))
    assert m.aop_deg == pytest.approx(expected, abs=0.5)
    axis = m.geometry.ps_axis
    assert np.hypot(*(np.array(axis.inferior) - inferior)) < 1.0
    assert np.hypot(*(np.array(axis.superior) - superior)) < 1.0
    # The tangent point lies on the head circle, and the returned geometry reproduces the value.
    aop = m.geometry.aop
    assert aop.vertex == axis.inferior and aop.superior == axis.superior
    assert aop_from_points(aop.superior, aop.vertex, aop.tangent_point) == pytest.approx(m.aop_deg)


@pytest.mark.parametrize("axis_deg,head_turn_deg", [s for s in SCENES if abs(math.cos(math.radians(s[1]))) * HEAD_DISTANCE
                                                     < HEAD_RADIUS - 5])
def test_hsd_along_the_perpendicular_matches_the_analytic_chord(axis_deg, head_turn_deg):
    labels, _, _, _ = transperineal_scene(axis_deg, head_turn_deg)
    m = measure_labelmap(labels)
    # Along the perpendicular, the head centre is d*sin(turn) ahead and d*|cos(turn)| aside: the circle is met
    # sqrt(r^2 - aside^2) before the foot of the centre.
    ahead = HEAD_DISTANCE * abs(math.sin(math.radians(head_turn_deg)))
    aside = HEAD_DISTANCE * abs(math.cos(math.radians(head_turn_deg)))
    assert m.hsd_method == "perpendicular"
    assert m.hsd_px == pytest.approx(ahead - math.sqrt(HEAD_RADIUS ** 2 - aside ** 2), abs=1.0)
    start, end = np.array(m.geometry.hsd.start), np.array(m.geometry.hsd.end)
    ps = np.array(m.geometry.ps_axis.superior) - np.array(m.geometry.ps_axis.inferior)
    assert abs(np.dot(end - start, ps)) / (np.hypot(*ps) * np.hypot(*(end - start))) < 1e-6  # perpendicular


@pytest.mark.parametrize("axis_deg,head_turn_deg", [(30, -105), (220, 110), (300, -100)])  # perpendicular meets the head
@pytest.mark.parametrize("aspect", [1.25, 0.8])
def test_aop_and_hsd_on_non_square_pixels_are_built_in_the_patient(axis_deg, head_turn_deg, aspect):
    # Rows `aspect` times as tall as columns: a scanner file whose region gives different mm per row and column.
    # The angle and the perpendicular must be the patient's, not the pixel grid's.
    labels, _, _, _ = transperineal_scene(axis_deg, head_turn_deg, shape=(int(500 / aspect), 500), aspect=aspect)
    mm_per_column = 0.2
    calibration = Calibration(pixel_spacing=Scale(mm_per_column, mm_per_column * aspect, "pixel_spacing"))
    m = measure_labelmap(labels, calibration)
    expected_aop = abs(head_turn_deg) + math.degrees(math.asin(HEAD_RADIUS / HEAD_DISTANCE))
    assert m.pixel_aspect == pytest.approx(aspect)
    assert m.aop_deg == pytest.approx(expected_aop, abs=0.6)
    assert abs(measure_labelmap(labels).aop_deg - expected_aop) > 2.0  # on the pixel grid the angle is another
    ahead = HEAD_DISTANCE * abs(math.sin(math.radians(head_turn_deg)))
    aside = HEAD_DISTANCE * abs(math.cos(math.radians(head_turn_deg)))
    assert m.hsd_method == "perpendicular"
    assert m.hsd_mm == pytest.approx((ahead - math.sqrt(HEAD_RADIUS ** 2 - aside ** 2)) * mm_per_column, abs=0.25)
    # The geometry stays in pixels and recomputing it (as an edit does) gives the same values.
    again = recompute(m.geometry, calibration, labels.shape)
    assert again.aop_deg == pytest.approx(m.aop_deg) and again.hsd_mm == pytest.approx(m.hsd_mm)
    assert again.pixel_aspect == pytest.approx(aspect)


def test_square_pixels_within_the_tolerance_keep_the_pixel_construction():
    labels, _, _, _ = transperineal_scene(30, -105)
    nearly_square = Calibration(pixel_spacing=Scale(0.2, 0.2004, "pixel_spacing"))
    m = measure_labelmap(labels, nearly_square)
    assert m.pixel_aspect == 1.0 and m.aop_deg == measure_labelmap(labels).aop_deg
    assert m.to_json()["pixel_aspect"] == 1.0


def test_hsd_falls_back_to_the_nearest_head_point_when_the_perpendicular_misses():
    labels, _, _, _ = transperineal_scene(20, 130)  # head centre 96 px aside of the perpendicular, radius 70: a miss
    m = measure_labelmap(labels)
    assert m.hsd_method == "nearest"
    assert m.hsd_px == pytest.approx(HEAD_DISTANCE - HEAD_RADIUS, abs=1.0)
    assert m.to_json()["geometry"]["hsd"]["method"] == "nearest"


@pytest.mark.parametrize("angle_deg", [0, 25, 60, 90, 135])
def test_hc_of_a_filled_ellipse_within_half_a_percent(angle_deg):
    labels = np.zeros((500, 600), np.uint8)
    draw_ellipse(labels, (300.3, 250.7), 150, 110, angle_deg, 2)
    m = measure_labelmap(labels)
    assert m.hc_px == pytest.approx(ramanujan_perimeter(150, 110), rel=0.005)
    ellipse = m.geometry.head_ellipse
    assert ellipse.semi_axes == pytest.approx((150, 110), abs=0.5)
    assert ellipse.center == pytest.approx((300.3, 250.7), abs=0.3)
    assert abs((ellipse.angle_deg - angle_deg + 90) % 180 - 90) < 0.5
    assert m.bpd_px == pytest.approx(2 * ellipse.semi_axes[1]) and m.ofd_px == pytest.approx(2 * ellipse.semi_axes[0])


def test_hc_of_a_one_pixel_outline_within_half_a_percent():
    outline = np.zeros((500, 600), np.uint8)
    truth = Ellipse((310.0, 240.0), (150.0, 110.0), 35.0)
    pts = np.round(truth.points(6000)).astype(int)
    outline[pts[:, 1], pts[:, 0]] = 255
    fitted = fit_head_ellipse(outline, kind="outline")
    assert ramanujan_perimeter(*fitted.semi_axes) == pytest.approx(ramanujan_perimeter(150, 110), rel=0.005)


def test_filled_mask_from_a_thick_outline_is_corrected_by_half_the_width():
    truth = Ellipse((300.0, 250.0), (150.0, 110.0), 20.0)
    mask = np.zeros((500, 600), np.uint8)
    draw_ellipse(mask, truth.center, 150 + 1.5, 110 + 1.5, 20.0, 1)  # filled to the outer edge of a 3 px line
    raw = ramanujan_perimeter(*fit_head_ellipse(mask).semi_axes)
    corrected = ramanujan_perimeter(*fit_head_ellipse(mask, outline_width_px=3.0).semi_axes)
    true_hc = ramanujan_perimeter(150, 110)
    assert raw - true_hc == pytest.approx(2 * math.pi * 1.5, rel=0.2)
    assert corrected == pytest.approx(true_hc, rel=0.002)


def polyline_perimeter(points: np.ndarray) -> float:
    return float(np.hypot(*(np.roll(points, -1, axis=0) - points).T).sum())


@pytest.mark.parametrize("angle_deg", [0, 30, 90, 120])
def test_anisotropic_scale_maps_the_ellipse_before_ramanujan(angle_deg):
    ellipse = Ellipse((300.0, 250.0), (150.0, 110.0), angle_deg)
    scale = Scale(0.2, 0.1, "pixel_spacing")
    values = ellipse_measurements(ellipse, Calibration(pixel_spacing=scale), (500, 600))
    in_mm = ellipse.points(4000) * [0.2, 0.1]
    assert values["hc_mm"] == pytest.approx(polyline_perimeter(in_mm), rel=1e-4)
    # The mm axes are the physical ellipse's extremes: half its widest and narrowest calliper width.
    directions = np.stack([np.cos(np.linspace(0, np.pi, 1800)), np.sin(np.linspace(0, np.pi, 1800))], axis=1)
    widths = (in_mm @ directions.T).max(axis=0) - (in_mm @ directions.T).min(axis=0)
    assert values["ofd_mm"] == pytest.approx(widths.max(), rel=1e-3)
    assert values["bpd_mm"] == pytest.approx(widths.min(), rel=1e-3)
    if angle_deg == 0:
        assert ellipse_in_mm(ellipse, scale) == pytest.approx((30.0, 11.0))
    # Scaling each semi-axis by its own direction's factor alone would be wrong in the rotated cases.
    naive = ramanujan_perimeter(150 * 0.2, 110 * 0.1)
    assert (values["hc_mm"] == pytest.approx(naive, rel=1e-6)) == (angle_deg == 0)


def test_hadlock_ga_reproduces_the_published_table(shared_data):
    table = np.loadtxt(shared_data / "reference" / "hadlock1984_hc_table.csv", delimiter=",", skiprows=1)
    errors = np.array([abs(hadlock_ga_weeks(hc_cm * 10) - weeks) for weeks, hc_cm in table])
    print(f"\nHadlock 1984 vs table ({len(table)} rows): mean |error| {errors.mean():.3f} weeks, max {errors.max():.3f}")
    assert errors.mean() <= 0.35
    assert errors.max() <= 0.63


def test_hadlock_ga_at_known_points_and_outside_its_range():
    assert hadlock_ga_weeks(300.0) == pytest.approx(8.96 + 0.54 * 30 - 0.004 * 900 + 0.000399 * 27000)
    for hc_mm in (50.0, 400.0):
        with pytest.raises(MeasurementRefused, match="Hadlock"):
            hadlock_ga_weeks(hc_mm)


def test_ga_and_its_range_come_with_a_calibrated_head():
    ellipse = Ellipse((300.0, 250.0), (150.0, 110.0), 0.0)
    values = ellipse_measurements(ellipse, Calibration.manual_mm_per_px(0.35), (500, 600))  # HC 288 mm
    assert values["hc_mm"] == pytest.approx(0.35 * ramanujan_perimeter(150, 110))
    assert values["ga_weeks"] == pytest.approx(hadlock_ga_weeks(values["hc_mm"]))
    assert values["ga_range_weeks"] == pytest.approx([values["ga_weeks"] - 2, values["ga_weeks"] + 2])
    tiny = ellipse_measurements(ellipse, Calibration.manual_mm_per_px(0.05), (500, 600))  # HC 41 mm: too early
    assert tiny["ga_weeks"] is None and "Hadlock" in tiny["reasons"]["ga_weeks"]


# --- edge cases -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis_deg,head_turn_deg", SCENES[:3])
def test_aop_alone_is_the_same_construction_as_the_full_measurement(axis_deg, head_turn_deg):
    labels, _, _, _ = transperineal_scene(axis_deg, head_turn_deg)
    assert aop_of_labelmap(labels) == pytest.approx(measure_labelmap(labels).aop_deg, abs=1e-9)
    assert aop_of_labelmap(np.where(labels == 2, 2, 0).astype(np.uint8)) is None  # no PS
    assert aop_of_labelmap(np.where(labels == 1, 1, 0).astype(np.uint8)) is None  # no head
    inside = labels.copy()
    draw_ellipse(inside, (250, 250), 120, 120, 0, 2)  # the head swallows the PS end: refused, not a number
    assert measure_labelmap(inside).aop_deg is None and aop_of_labelmap(inside) is None


def test_empty_map_gives_no_values_and_says_why():
    m = measure_labelmap(np.zeros((64, 64), np.uint8))
    out = m.to_json()
    for key in ("aop_deg", "hsd_px", "hsd_mm", "hc_px", "hc_mm", "bpd_mm", "ofd_mm", "ga_weeks"):
        assert out[key] is None, key
        assert out["reasons"][key], key
    assert "pubic symphysis" in out["reasons"]["aop_deg"] and "fetal head" in out["reasons"]["aop_deg"]
    assert out["geometry"] == {"ps_axis": None, "aop": None, "hsd": None, "head_ellipse": None, "head_contour": None}


def test_only_ps_and_only_fh():
    labels, _, _, _ = transperineal_scene(0, 100)
    only_ps = np.where(labels == 1, 1, 0).astype(np.uint8)
    only_fh = np.where(labels == 2, 2, 0).astype(np.uint8)
    m = measure_labelmap(only_ps)
    assert m.aop_deg is None and "no fetal head" in m.reasons["aop_deg"] and m.hc_px is None
    m = measure_labelmap(only_fh)
    assert m.aop_deg is None and "no pubic symphysis" in m.reasons["aop_deg"]
    assert m.hsd_px is None and m.reasons["hsd_mm"]
    assert m.hc_px == pytest.approx(2 * math.pi * HEAD_RADIUS, rel=0.005)
    assert m.hc_mm is None and "no calibration" in m.reasons["hc_mm"]


def test_tiny_and_round_structures_are_refused():
    labels = np.zeros((300, 300), np.uint8)
    draw_ellipse(labels, (200, 200), 70, 60, 0, 2)
    labels[20:22, 20:25] = 1  # 10 px of PS
    m = measure_labelmap(labels)
    assert m.aop_deg is None and "too small" in m.reasons["aop_deg"]
    labels[labels == 1] = 0
    draw_ellipse(labels, (60, 60), 15, 14, 0, 1)  # a round PS has no long axis
    m = measure_labelmap(labels)
    assert m.aop_deg is None and "elongated" in m.reasons["aop_deg"]
    tiny_head = np.zeros((300, 300), np.uint8)
    draw_ellipse(tiny_head, (150, 150), 5, 4, 0, 2)
    m = measure_labelmap(tiny_head)
    assert m.hc_px is None and "too small" in m.reasons["hc_px"] and m.reasons["ga_weeks"] == m.reasons["hc_px"]


def test_ps_end_inside_the_head_outline_is_refused():
    labels = np.zeros((300, 300), np.uint8)
    draw_ellipse(labels, (150, 150), 100, 100, 0, 2)
    draw_ellipse(labels, (150, 150), 60, 60, 0, 0)  # a ring: its convex outline covers the hole
    draw_rectangle(labels, (150, 150), 10, 60, 10, 1)
    m = measure_labelmap(labels)
    assert m.aop_deg is None and "inside the fetal head" in m.reasons["aop_deg"]
    assert m.hsd_px is None and m.reasons["hsd_px"]


def test_head_cut_off_by_the_frame_edge_gets_no_ellipse():
    labels = np.zeros((200, 200), np.uint8)
    draw_ellipse(labels, (100, 190), 80, 60, 0, 2)
    m = measure_labelmap(labels)
    assert m.hc_px is None and "frame edge" in m.reasons["hc_px"]


def test_values_other_than_0_1_2_are_rejected(tmp_path):
    bad = np.zeros((32, 32), np.uint8)
    bad[4:8, 4:8] = 255
    with pytest.raises(InputError, match="255"):
        measure_labelmap(bad)
    cv2.imwrite(str(tmp_path / "bad.png"), bad)
    with pytest.raises(InputError, match="bad.png"):
        load_labelmap(tmp_path / "bad.png")
    with pytest.raises(InputError, match="2D"):
        measure_labelmap(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="not found"):
        load_labelmap(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read junk.png as an image; measure takes a label map .* use analyze"):
        load_labelmap(tmp_path / "junk.png")
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 2] = 1
    cv2.imwrite(str(tmp_path / "colour.png"), colour)
    with pytest.raises(InputError, match="colour"):
        load_labelmap(tmp_path / "colour.png")


def test_negative_and_wide_integer_labels_are_rejected_too():
    # The fast range check must not let through what np.unique would have named.
    for dtype, value in ((np.int16, -1), (np.int32, 3), (np.uint16, 258)):
        bad = np.zeros((16, 16), dtype)
        bad[2, 3] = value
        with pytest.raises(InputError, match=str(value)):
            measure_labelmap(bad)
    ok = np.zeros((16, 16), np.int64)
    ok[4:9, 4:9] = 2
    assert check_labelmap(ok).dtype == np.uint8


def test_region_helpers_on_the_bounding_box_match_the_whole_frame_versions():
    """largest_component, region_pixels and edge_points work on a region's bounding box for speed; they must give
    exactly what the plain whole-frame computation gives, specks and frame edges included."""
    rng = np.random.default_rng(3)
    for trial in range(40):
        mask = np.zeros((60, 80), bool)
        for _ in range(rng.integers(0, 5)):
            y, x, h, w = rng.integers(0, 60), rng.integers(0, 80), rng.integers(1, 25), rng.integers(1, 25)
            mask[y:y + h, x:x + w] = True
        mask &= rng.random(mask.shape) > 0.1  # holes and specks
        count, components, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        expected = mask if count <= 2 else components == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        largest = largest_component(mask)
        assert largest.shape == mask.shape and np.array_equal(largest, expected), trial
        ys, xs = np.nonzero(largest)
        assert np.array_equal(region_pixels(largest), np.stack([xs, ys], axis=1))
        points, on_frame = edge_points(largest)
        # Whole frame: a region pixel's side faces a non-region 4-neighbour (or the frame's outside).
        padded = np.pad(largest, 1)
        expected_points = []
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            ey, ex = np.nonzero(padded & ~np.roll(padded, (-dy, -dx), axis=(0, 1)))
            expected_points += [(x - 1 + dx / 2.0, y - 1 + dy / 2.0) for y, x in zip(ey, ex)]
        assert sorted(map(tuple, points.tolist())) == sorted(expected_points)
        outside = (points[:, 0] < 0) | (points[:, 0] > 79) | (points[:, 1] < 0) | (points[:, 1] > 59)
        assert np.array_equal(on_frame, outside)
        assert (bounding_box(largest) is None) == (not largest.any())


def test_load_labelmap_round_trips_a_png(tmp_path):
    labels, _, _, _ = transperineal_scene(30, -105)
    cv2.imwrite(str(tmp_path / "labels.png"), labels)
    loaded = load_labelmap(tmp_path / "labels.png")
    assert loaded.dtype == np.uint8 and np.array_equal(loaded, labels)


def test_calibration_refusal_reaches_the_reasons():
    labels, _, _, _ = transperineal_scene(0, 100)
    region = UltrasoundRegion(0, 0, 0, 100, 100, 1, 1, 3, 3, 0.01, 0.01)  # covers none of the measurement
    m = measure_labelmap(labels, Calibration(regions=(region,)))
    lookup = Calibration(regions=(region,)).scale_for([m.geometry.hsd.start, m.geometry.hsd.end], labels.shape)
    assert m.hsd_px is not None and m.hsd_mm is None
    assert m.reasons["hsd_mm"] == lookup.reason and "outside every ultrasound region" in lookup.reason
    no_units = UltrasoundRegion(0, 0, 0, 499, 499, 1, 1, 0, 0, 1.0, 1.0)
    m = measure_labelmap(labels, Calibration(regions=(no_units,)))
    assert m.hsd_mm is None and "no length units" in m.reasons["hsd_mm"]
    assert m.to_json()["calibration"]["source"] == "dicom_regions"


def test_calibrated_hsd_and_hc_in_mm():
    labels = np.zeros((500, 500), np.uint8)
    ps_and_head, _, _, _ = transperineal_scene(0, 100)
    labels[:] = ps_and_head
    m = measure_labelmap(labels, Calibration.manual_mm_per_px(0.25))
    assert m.hsd_mm == pytest.approx(0.25 * m.hsd_px)
    assert m.hc_mm == pytest.approx(0.25 * m.hc_px)
    assert m.to_json()["calibration"] == {"source": "manual", "detail": "manual: entered by the user"}
    region = UltrasoundRegion(0, 0, 0, 499, 499, 1, 1, 3, 3, 0.02, 0.02)  # 0.02 cm = 0.2 mm per pixel
    assert measure_labelmap(labels, Calibration(regions=(region,))).hsd_mm == pytest.approx(0.2 * m.hsd_px)


# --- JSON contract and recomputation from edited geometry --------------------------------------------------------

def test_json_contract_and_geometry_round_trip():
    labels, _, _, _ = transperineal_scene(30, -105)
    m = measure_labelmap(labels, Calibration.manual_mm_per_px(0.2))
    out = json.loads(json.dumps(m.to_json()))
    for key in CONTRACT_KEYS:
        assert key in out
    g = out["geometry"]
    assert set(g) >= {"ps_axis", "aop", "hsd", "head_ellipse"}
    assert set(g["aop"]) == {"vertex", "superior", "tangent_point"} and g["hsd"]["method"] == "perpendicular"
    again = recompute(Geometry.from_json(g), Calibration.manual_mm_per_px(0.2), labels.shape)
    for key in ("aop_deg", "hsd_px", "hsd_mm", "hc_px", "hc_mm", "ga_weeks"):
        assert again.to_json()[key] == pytest.approx(out[key], rel=1e-4), key  # JSON keeps 0.001 px


def test_recompute_from_a_moved_tangent_point_uses_the_same_angle_function():
    labels, _, _, _ = transperineal_scene(0, 100)
    m = measure_labelmap(labels)
    g = m.geometry
    moved = (g.aop.tangent_point[0] + 10.0, g.aop.tangent_point[1] + 5.0)
    edited = Geometry(g.ps_axis, AoPLines(g.aop.vertex, g.aop.superior, moved), g.hsd, g.head_ellipse, g.head_contour)
    again = recompute(edited, None, labels.shape)
    assert again.aop_deg == pytest.approx(aop_from_points(g.ps_axis.superior, g.ps_axis.inferior, moved))
    assert again.aop_deg != pytest.approx(m.aop_deg)
    assert again.hc_px == pytest.approx(m.hc_px)


def test_recompute_follows_a_moved_ps_end_when_asked():
    labels, _, _, _ = transperineal_scene(0, 100)
    g = measure_labelmap(labels).geometry
    axis = PSAxis(superior=(g.ps_axis.superior[0], g.ps_axis.superior[1] - 20.0), inferior=g.ps_axis.inferior)
    edited = Geometry(axis, g.aop, g.hsd, g.head_ellipse, g.head_contour)
    again = recompute(edited, None, labels.shape, refit_dependents=True)
    tangent = tangent_point_to_head(axis.inferior, axis.superior, g.head_contour)
    assert again.geometry.aop.tangent_point == tangent and again.geometry.aop.superior == axis.superior
    assert again.aop_deg == pytest.approx(aop_from_points(axis.superior, axis.inferior, tangent))
    assert again.hsd_px == pytest.approx(hsd_from_points(again.geometry.hsd.start, again.geometry.hsd.end, None,
                                                         labels.shape).px)


def test_implausible_aop_from_edited_geometry_is_refused():
    g = Geometry(PSAxis((100.0, 100.0), (150.0, 100.0)), AoPLines((150.0, 100.0), (100.0, 100.0), (100.0, 130.0)))
    assert aop_from_points((100, 100), (150, 100), (100, 130)) == pytest.approx(math.degrees(math.atan2(30, 50)))
    m = recompute(g, None, (300, 300))
    assert m.aop_deg is None and "plausible" in m.reasons["aop_deg"]
    assert m.hsd_px is None and m.hc_px is None and m.reasons["hc_mm"]


def test_tangent_from_inside_the_head_and_degenerate_points_are_refused():
    circle = Ellipse((100.0, 100.0), (40.0, 40.0), 0.0).points(90)
    with pytest.raises(MeasurementRefused, match="inside"):
        tangent_point_to_head((100.0, 110.0), (100.0, 0.0), circle)
    with pytest.raises(MeasurementRefused):
        aop_from_points((1, 1), (1, 1), (5, 5))


def test_ellipse_is_named_from_its_major_axis():
    e = Ellipse((0.0, 0.0), (50.0, 80.0), 10.0)
    assert e.semi_axes == (80.0, 50.0) and e.angle_deg == pytest.approx(100.0)
    assert Ellipse.from_json(e.to_json()) == e
    with pytest.raises(MeasurementRefused):
        Ellipse((0.0, 0.0), (0.0, 10.0), 0.0)
    with pytest.raises(ValueError, match="kind"):
        fit_head_ellipse(np.ones((10, 10)), kind="blob")


def test_hsd_is_described_in_mm_only_with_a_calibration_and_says_why_not():
    from workstation.measure import describe_hsd

    assert describe_hsd(12.345, 61.7) == "12.3 mm"
    assert describe_hsd(None, 61.7, "no calibration in the file") == "62 px (no mm: no calibration in the file)"
    assert describe_hsd(None, 61.7) == "62 px (no mm)" and describe_hsd(None, None) == "-"
