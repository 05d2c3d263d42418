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

A step the records refuse to keep (a full disk, read-only records: ``apply`` returns :data:`NOT_SAVED`) must not stay
on screen: ``apply`` has put the frame back as the records hold it, and the stack steps back over the command without
acting again (:meth:`ReviewCommand.step_back`), so that Undo and Redo go on matching the screen. A first do refused
that way stays on the redo side of the stack: Redo tries it again (a dragged correction is not lost).
"""
from __future__ import annotations

from typing import Callable

from PySide6 import QtGui

CORRECTION, RESET, ACCEPT = "correction", "reset", "accept"
UNDO = "undo"
CALIBRATION = "calibration"  # not an undoable action: a new calibration's values, in a review record's "change"


class ReviewCommand(QtGui.QUndoCommand):
    """Moves one frame's review state between two snapshots."""

    def __init__(self, apply: Callable[[int, dict, str, dict | None, dict | None], object], frame_index: int,
                 before: dict, after: dict, kind: str, text: str, records_before: dict | None = None):
        super().__init__(text)
        self.apply = apply
        self.frame_index = frame_index
        self.before = before
        self.after = after
        self.kind = kind
        self.records_before = records_before
        self.records_after: dict | None = None
        self._done = False
        self._pass = False  # the next undo/redo only moves the stack's index (see step_back)
        self.not_saved = False  # the last undo/redo was refused by the records and put back on screen

    def redo(self) -> None:
        if self._pass:
            self._pass = False
            return
        # QUndoStack.push calls this once at once: the state is already "after" (harmless), and the records save it
        # as the action itself; a later redo asks for the records' state after it back. Refused: back to "before".
        restore = self.records_after if self._done else None
        records_now = self.apply(self.frame_index, self.after, self.kind, restore, self.before)
        self.not_saved = records_now is NOT_SAVED
        if not self._done and not self.not_saved:
            self._done, self.records_after = True, records_now

    def undo(self) -> None:
        if self._pass:
            self._pass = False
            return
        self.not_saved = self.apply(self.frame_index, self.before, UNDO, self.records_before, self.after) is NOT_SAVED

    def step_back(self) -> None:
        """The stack's next undo or redo of this command only moves its index back over it (the screen is already
        as the records hold it)."""
        self._pass = True
        self.not_saved = False


class _NotSaved:
    def __repr__(self) -> str:
        return "NOT_SAVED"


NOT_SAVED = _NotSaved()  # what ``apply`` returns when the records refused the step and the screen was put back
