"""Measurements on label maps: AoP and HSD (ISUOG 2018 intrapartum guideline; Kalache 2009) and head biometry
(HC, BPD, OFD; GA by Hadlock 1984), each with the geometry it used so a person can see and correct it.

No Qt here: the GUI draws ``Measurements.geometry`` and calls ``recompute`` after an edit.
"""
from workstation.measure.biometry import (BIOMETRY_CONVENTION, HC18_OUTLINE_WIDTH_PX, ellipse_in_mm,
                                          ellipse_measurements, fit_head_ellipse, hadlock_ga_weeks,
                                          ramanujan_perimeter)
from workstation.measure.geometry import (HSD_NEAREST, HSD_PERPENDICULAR, AoPLines, Ellipse, Geometry, HSDLine,
                                          MeasurementRefused, PSAxis)
from workstation.measure.measurements import (Measurements, aop_of_labelmap, describe_aop_hsd, describe_hsd,
                                              measure_labelmap, recompute)
from workstation.measure.regions import load_labelmap
from workstation.measure.transperineal import (AOP_PLAUSIBLE_DEG, aop_from_points, hsd_from_points, hsd_line_to_head,
                                               tangent_point_to_head)

__all__ = [
    "AOP_PLAUSIBLE_DEG", "BIOMETRY_CONVENTION", "HC18_OUTLINE_WIDTH_PX", "HSD_NEAREST", "HSD_PERPENDICULAR",
    "AoPLines", "Ellipse", "Geometry", "HSDLine", "MeasurementRefused", "Measurements", "PSAxis",
    "aop_from_points", "describe_aop_hsd", "describe_hsd", "ellipse_in_mm", "ellipse_measurements", "fit_head_ellipse", "hadlock_ga_weeks",
    "hsd_from_points", "hsd_line_to_head", "load_labelmap", "aop_of_labelmap", "measure_labelmap", "ramanujan_perimeter", "recompute",
    "tangent_point_to_head",
]
