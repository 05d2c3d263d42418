"""Physical scale of ultrasound pixels, and where it came from.

A distance gets a mm value only when its scale is beyond doubt: every point of the
measurement lies in one 2D-image region with length units that fits inside the frame,
or the file gives Pixel Spacing, or the user supplied a manual value. Otherwise the
lookup returns no scale and a reason, and callers show pixels only.

Coordinates are (x, y) = (column, row) in frame pixels, pixel centres at integers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

Point = tuple[float, float]


@dataclass(frozen=True)
class Scale:
    """mm per pixel along x (columns) and y (rows), with its source."""

    mm_per_px_x: float
    mm_per_px_y: float
    source: str  # "dicom_region", "pixel_spacing", "imager_pixel_spacing", "manual"
    detail: str = ""  # e.g. "region 0 (2D, cm)"

    def length_mm(self, p: Point, q: Point) -> float:
        dx = (q[0] - p[0]) * self.mm_per_px_x
        dy = (q[1] - p[1]) * self.mm_per_px_y
        return float((dx * dx + dy * dy) ** 0.5)


# The one range a manual scale may have (the CLI's ``calibrate`` and ``--mm-per-px``, the viewer's line on the depth
# scale, a stored manual calibration all go through :func:`manual_scale_problem`). An ultrasound image shows a few cm
# to about 30 cm of depth over a few hundred to a couple of thousand pixel rows: a fine linear probe at 2 cm over
# 1,000 rows is 0.02 mm/px, a 30 cm abdominal sector squeezed into a 150-row thumbnail is 2 mm/px; the labour ward's
# transperineal and head planes (5-20 cm over 400-1,200 rows) lie near 0.05-0.5. A value outside 0.01-2 mm/px is
# a slip (a typo, cm or m for mm, a line laid over a few pixels), and every mm measured with it would be wrong.
MANUAL_MM_PER_PX_RANGE = (0.01, 2.0)
# A manual scale further than this from the file's own is worth a second look (a hand-laid line on the depth scale
# is good to a percent or two); it is used all the same: files that need a manual scale often carry a wrong one.
MANUAL_DISAGREEMENT = 0.05


def describe_mm_per_px(mm_per_px: float) -> str:
    """A scale as every line writes it: four significant digits, so 0.0125 is never shown as 0.0000 or 0.01."""
    return f"{float(mm_per_px):#.4g} mm/px"


def manual_scale_problem(mm_per_px) -> str | None:
    """Why ``mm_per_px`` cannot be a manual scale (not a number, or outside :data:`MANUAL_MM_PER_PX_RANGE`), in one
    line; None when it can."""
    low, high = MANUAL_MM_PER_PX_RANGE
    try:
        value = float(mm_per_px)
    except (TypeError, ValueError):
        return f"a manual calibration must be a number of mm per pixel, got {mm_per_px!r}"
    if not low <= value <= high:  # NaN fails here too
        shown = describe_mm_per_px(value) if value == value and abs(value) != float("inf") else f"{value} mm/px"
        return (f"a manual calibration of {shown} is outside the plausible range for an ultrasound image "
                f"({low:g} to {high:g} mm per pixel); check the value (mm, not cm) or the line on the depth scale")
    return None


def manual_scale_disagreement(file_calibration: "Calibration", mm_per_px: float,
                              frame_shape: Sequence[int]) -> str | None:
    """A warning where the manual scale differs from the file's own (its scale of the whole frame,
    :meth:`Calibration.frame_scale`) by more than :data:`MANUAL_DISAGREEMENT`, saying by how much; None where the
    file has no scale of its own or they agree."""
    own = Calibration(file_calibration.regions, file_calibration.pixel_spacing).frame_scale(frame_shape)
    if own is None:
        return None
    worst = max((own.mm_per_px_x, own.mm_per_px_y), key=lambda v: abs(mm_per_px / v - 1.0))
    ratio = mm_per_px / worst
    if abs(ratio - 1.0) <= MANUAL_DISAGREEMENT:
        return None
    how = (f"{(ratio - 1.0) * 100:.0f}% more than" if ratio < 2 else f"{ratio:.3g} times") if ratio > 1 else \
        (f"{(1.0 - ratio) * 100:.0f}% less than" if ratio > 0.5 else f"1/{1.0 / ratio:.3g} of")
    theirs = (describe_mm_per_px(own.mm_per_px_x) if own.mm_per_px_x == own.mm_per_px_y else
              f"{describe_mm_per_px(own.mm_per_px_x)} across, {describe_mm_per_px(own.mm_per_px_y)} down")
    return (f"the manual {describe_mm_per_px(mm_per_px)} is {how} the file's own {theirs} "
            f"({own.source}{', ' + own.detail if own.detail else ''}); check the value and the line on the depth "
            "scale: every mm now follows the manual scale")


@dataclass(frozen=True)
class ScaleLookup:
    """The scale for a set of points, or ``None`` with the reason why there is no mm value."""

    scale: Scale | None
    reason: str | None = None


# DICOM (0018,6024)/(0018,6026) Physical Units X/Y Direction codes that are lengths, in mm per unit.
_LENGTH_UNITS_MM = {3: 10.0}  # 3 = cm; the only length unit the standard defines for regions
_UNIT_NAMES = {0: "none", 1: "percent", 2: "dB", 3: "cm", 4: "seconds", 5: "hertz", 6: "dB/seconds",
               7: "cm/sec", 8: "cm2", 9: "cm2/sec", 10: "cm3", 11: "cm3/sec", 12: "degrees"}
_SPATIAL_FORMAT_2D = 1
_DATA_TYPE_TISSUE = 1


@dataclass(frozen=True)
class UltrasoundRegion:
    """One item of the Sequence of Ultrasound Regions (0018,6011)."""

    index: int
    x0: int  # RegionLocationMinX0 (inclusive)
    y0: int  # RegionLocationMinY0
    x1: int  # RegionLocationMaxX1 (inclusive)
    y1: int  # RegionLocationMaxY1
    spatial_format: int  # 1 = 2D image, 2 = M-mode, 3 = spectral, 4 = waveform, 0 = none
    data_type: int  # 1 = tissue, 10 = ECG trace, 13 = grey bar, ...
    units_x: int
    units_y: int
    delta_x: float  # physical units per pixel along x
    delta_y: float

    def contains(self, p: Point) -> bool:
        return self.x0 - 0.5 <= p[0] <= self.x1 + 0.5 and self.y0 - 0.5 <= p[1] <= self.y1 + 0.5

    def fits_in(self, frame_shape: Sequence[int]) -> bool:
        rows, cols = int(frame_shape[0]), int(frame_shape[1])
        return 0 <= self.x0 <= self.x1 < cols and 0 <= self.y0 <= self.y1 < rows

    def describe(self) -> str:
        kind = "2D" if self.spatial_format == _SPATIAL_FORMAT_2D else f"spatial format {self.spatial_format}"
        return f"region {self.index} ({kind}, {_UNIT_NAMES.get(self.units_x, self.units_x)})"

    def length_problem(self) -> str | None:
        """Why this region cannot calibrate a distance, or None when it can."""
        if self.spatial_format != _SPATIAL_FORMAT_2D:
            return f"{self.describe()} is not a 2D image region (a waveform or trace has no length scale)"
        if self.units_x not in _LENGTH_UNITS_MM or self.units_y not in _LENGTH_UNITS_MM:
            return (f"{self.describe()} has no length units (x: {_UNIT_NAMES.get(self.units_x, self.units_x)}, "
                    f"y: {_UNIT_NAMES.get(self.units_y, self.units_y)})")
        if not (self.delta_x > 0 and self.delta_y > 0):
            return f"{self.describe()} has a non-positive physical delta"
        return None

    def scale(self) -> Scale:
        return Scale(self.delta_x * _LENGTH_UNITS_MM[self.units_x], self.delta_y * _LENGTH_UNITS_MM[self.units_y],
                     "dicom_region", self.describe())


@dataclass(frozen=True)
class Calibration:
    """Everything a file (or a user) says about pixel size.

    Precedence: a manual value the user entered, then the ultrasound regions, then
    Pixel Spacing, then Imager Pixel Spacing. A file with regions never falls back to
    Pixel Spacing when its regions refuse a measurement: the refusal stands.
    """

    regions: tuple[UltrasoundRegion, ...] = ()
    pixel_spacing: Scale | None = None  # from PixelSpacing or ImagerPixelSpacing
    manual: Scale | None = None

    @staticmethod
    def manual_mm_per_px(mm_per_px: float, detail: str = "entered by the user") -> "Calibration":
        """A manual scale alone; ValueError (:func:`manual_scale_problem`'s line) for one no ultrasound image has."""
        problem = manual_scale_problem(mm_per_px)
        if problem is not None:
            raise ValueError(problem)
        return Calibration(manual=Scale(float(mm_per_px), float(mm_per_px), "manual", detail))

    def with_manual(self, mm_per_px: float, detail: str = "entered by the user") -> "Calibration":
        return Calibration(self.regions, self.pixel_spacing, Calibration.manual_mm_per_px(mm_per_px, detail).manual)

    @property
    def source(self) -> str:
        """The calibration a user is shown: manual, dicom_regions, pixel_spacing, imager_pixel_spacing or none."""
        if self.manual is not None:
            return "manual"
        if self.regions:
            return "dicom_regions"
        if self.pixel_spacing is not None:
            return self.pixel_spacing.source
        return "none"

    def scale_for(self, points: Iterable[Point], frame_shape: Sequence[int]) -> ScaleLookup:
        """The scale valid for all ``points`` of one measurement on a frame of ``frame_shape`` (rows, cols, ...)."""
        pts = [(float(p[0]), float(p[1])) for p in points]
        if self.manual is not None:
            # The person's scale replaces the file's, but not where the file's regions lie: a line on a Doppler
            # strip, or across two images, is still no tissue length. Regions that do not fit the frame (a resized
            # file, often why a manual scale was entered) say nothing about where things are.
            fitting = tuple(r for r in self.regions if r.fits_in(frame_shape))
            refusal = _location_refusal(fitting, pts) if fitting and pts else None
            return ScaleLookup(None, refusal) if refusal else ScaleLookup(self.manual)
        if self.regions:
            return self._region_scale(pts, frame_shape)
        if self.pixel_spacing is not None:
            return ScaleLookup(self.pixel_spacing)
        return ScaleLookup(None, "the file gives no physical scale (no ultrasound regions, no pixel spacing): pixels only")

    def frame_scale(self, frame_shape: Sequence[int]) -> Scale | None:
        """The scale of the image the analysis measures in, one for the whole frame: where its pixels' shape is
        taken from (``workstation.measure.transperineal.frame_aspect``). The manual value; else, of the 2D regions
        that fit the frame and can calibrate a length (tissue ones first), the one holding the frame's centre, else
        the largest; else Pixel Spacing (never with regions, as in ``scale_for``); None where there is none."""
        if self.manual is not None:
            return self.manual
        if not self.regions:
            return self.pixel_spacing
        usable = [r for r in self.regions if r.fits_in(frame_shape) and r.length_problem() is None]
        usable = [r for r in usable if r.data_type == _DATA_TYPE_TISSUE] or usable
        if not usable:
            return None
        centre = ((int(frame_shape[1]) - 1) / 2.0, (int(frame_shape[0]) - 1) / 2.0)
        holding = [r for r in usable if r.contains(centre)]
        return max(holding or usable, key=lambda r: (r.x1 - r.x0 + 1) * (r.y1 - r.y0 + 1)).scale()

    def _region_scale(self, pts: list[Point], frame_shape: Sequence[int]) -> ScaleLookup:
        if not pts:
            return ScaleLookup(None, "no points to calibrate")
        refusal = _location_refusal(self.regions, pts)
        if refusal:
            return ScaleLookup(None, refusal)
        holders = [r for r in self.regions if all(r.contains(p) for p in pts)]
        # Overlapping regions: prefer a usable 2D one; any that cannot calibrate explains the refusal.
        problems = []
        for region in holders:
            if not region.fits_in(frame_shape):
                problems.append(f"{region.describe()} does not fit inside the {int(frame_shape[1])}x{int(frame_shape[0])} "
                                f"frame (a resized file that kept its old regions?)")
                continue
            problem = region.length_problem()
            if problem is None:
                return ScaleLookup(region.scale())
            problems.append(problem)
        return ScaleLookup(None, problems[0] + ": pixels only")


def _location_refusal(regions: Sequence[UltrasoundRegion], pts: list[Point]) -> str | None:
    """Why the points cannot be one tissue length, judged by where the regions lie (not by their scales);
    None when one region holds them all and none of them touches a non-image region."""
    # A point on a trace, a grey bar or any other non-image region is not tissue, even where
    # that region overlaps a 2D one: refuse rather than measure across it.
    for region in regions:
        if region.spatial_format != _SPATIAL_FORMAT_2D and any(region.contains(p) for p in pts):
            return f"the measurement touches {region.describe()}, which is not tissue: pixels only"
    if any(all(r.contains(p) for p in pts) for r in regions):
        return None
    if any(r.contains(p) for r in regions for p in pts):
        return "the measurement's points fall in different ultrasound regions: pixels only"
    return "the measurement lies outside every ultrasound region: pixels only"
