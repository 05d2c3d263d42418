"""Undoable review actions: a correction (a caliper drop), Reset to AI, Accept.

Each action is applied to the frame's ``FrameMeasurementState`` first; the command then holds that state's
snapshots before and after, and undo/redo restore one or the other through the window, which also brings the
frame back on screen and puts the calipers where the values say. A snapshot's corrected geometry is measured
again with the calibration in force (``FrameMeasurementState.restore``): under the same calibration the values
undone to are exactly those that were shown; after a manual calibration they are in its mm, never the old scale's.

With records attached, a command also holds the records' current measurement before and after it was first done
(``records_before``/``records_after``, as the window's ``apply`` reports them: ``{"measurement_id": id or None}``,
None without records). Undo asks for exactly the state before to be current again, redo the state after
(``workstation.records.save_viewer_review``, ``restore_measurement_id``), so the records follow the screen
however many steps are undone, never a chain of the rows the viewer itself wrote.
"""
from __future__ import annotations

from typing import Callable

from PySide6 import QtGui

CORRECTION, RESET, ACCEPT = "correction", "reset", "accept"
UNDO = "undo"
CALIBRATION = "calibration"  # not an undoable action: a new calibration's values, in a review record's "change"


class ReviewCommand(QtGui.QUndoCommand):
    """Moves one frame's review state between two snapshots."""

    def __init__(self, apply: Callable[[int, dict, str, dict | None], dict | None], frame_index: int, before: dict,
                 after: dict, kind: str, text: str, records_before: dict | None = None):
        super().__init__(text)
        self.apply = apply
        self.frame_index = frame_index
        self.before = before
        self.after = after
        self.kind = kind
        self.records_before = records_before
        self.records_after: dict | None = None
        self._done = False

    def redo(self) -> None:
        # QUndoStack.push calls this once at once: the state is already "after" (harmless), and the records save it
        # as the action itself; a later redo asks for the records' state after it back.
        restore = self.records_after if self._done else None
        records_now = self.apply(self.frame_index, self.after, self.kind, restore)
        if not self._done:
            self._done, self.records_after = True, records_now

    def undo(self) -> None:
        self.apply(self.frame_index, self.before, UNDO, self.records_before)
