"""Undoable review actions: a correction (a caliper drop), Reset to AI, Accept.

Each action is applied to the frame's ``FrameMeasurementState`` first; the command then holds that state's
snapshots before and after, and undo/redo restore one or the other through the window, which also brings the
frame back on screen and puts the calipers where the values say. A snapshot's corrected geometry is measured
again with the calibration in force (``FrameMeasurementState.restore``): under the same calibration the values
undone to are exactly those that were shown; after a manual calibration they are in its mm, never the old scale's.
"""
from __future__ import annotations

from typing import Callable

from PySide6 import QtGui

CORRECTION, RESET, ACCEPT = "correction", "reset", "accept"
UNDO = "undo"
CALIBRATION = "calibration"  # not an undoable action: a new calibration's values, in a review record's "change"


class ReviewCommand(QtGui.QUndoCommand):
    """Moves one frame's review state between two snapshots."""

    def __init__(self, apply: Callable[[int, dict, str], None], frame_index: int, before: dict, after: dict,
                 kind: str, text: str):
        super().__init__(text)
        self.apply = apply
        self.frame_index = frame_index
        self.before = before
        self.after = after
        self.kind = kind

    def redo(self) -> None:  # QUndoStack.push calls this once at once: the state is already "after", so harmless
        self.apply(self.frame_index, self.after, self.kind)

    def undo(self) -> None:
        self.apply(self.frame_index, self.before, UNDO)
