"""The frame classes (planes) a model grades each frame into, named once for the engine, pipeline, GUI and training."""
from __future__ import annotations

STANDARD_PLANE = "standard_plane"  # transperineal, pubic symphysis and fetal head both in view
ONE_STRUCTURE = "one_structure"  # transperineal, only one of the two in view
BIOMETRY_PLANE = "not_transperineal"  # an axial head plane: where HC, BPD and GA belong and the head model runs
NO_ANATOMY = "no_anatomy"
DEFAULT_PLANE_CLASSES = (STANDARD_PLANE, ONE_STRUCTURE, BIOMETRY_PLANE, NO_ANATOMY)  # the plane output's order
AOP_PLANES = (STANDARD_PLANE, ONE_STRUCTURE)  # where an AoP is the question
