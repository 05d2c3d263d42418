"""The frame classes (planes) a model grades each frame into, named once for the engine, pipeline, GUI and training."""
from __future__ import annotations

STANDARD_PLANE = "standard_plane"  # transperineal, pubic symphysis and fetal head both in view
ONE_STRUCTURE = "one_structure"  # transperineal, only one of the two in view
BIOMETRY_PLANE = "not_transperineal"  # an axial head plane: where HC, BPD and GA belong and the head model runs
NO_ANATOMY = "no_anatomy"
DEFAULT_PLANE_CLASSES = (STANDARD_PLANE, ONE_STRUCTURE, BIOMETRY_PLANE, NO_ANATOMY)  # the plane output's order
AOP_PLANES = (STANDARD_PLANE, ONE_STRUCTURE)  # where an AoP is the question
# What a person reads for each class (panel, strip, the reasons a value was withheld); unknown names (another
# model's classes) are shown as they are.
PLANE_DESCRIPTIONS = {
    STANDARD_PLANE: "standard plane (PS and FH)",
    ONE_STRUCTURE: "one structure only",
    BIOMETRY_PLANE: "not transperineal (axial head plane)",
    NO_ANATOMY: "no anatomy",
}


def describe_plane(frame_class: str | None) -> str:
    """The readable name of a frame class."""
    if frame_class is None:
        return "not classed"
    return PLANE_DESCRIPTIONS.get(frame_class, frame_class)
