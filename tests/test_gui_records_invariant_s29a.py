"""Property-style: random short sequences of correct / accept / Reset to AI / calibrate / undo / redo in the window,
over real SQLite records; after every step the measurement current in the records is what the screen shows, in the
calibration in force (``_screen_agrees_with_records``, to the AoP's last shown digit: an exam opened again shows the
value on record measured again), and nothing the window did is refused as someone else's."""
from __future__ import annotations

import random

import pytest
from PySide6 import QtCore

from gui_support import make_window, no_leftover_jobs  # noqa: F401 (fixtures)
from test_gui_window_records import (_drag_tangent, _open_and_wait, _screen_agrees_with_records, records,  # noqa: F401
                                     ward)

pytestmark = pytest.mark.usefixtures("no_leftover_jobs")
# With two frames reviewed, a withdrawal on one (Reset to AI, or a calibration withdrawing an acceptance) leaves the
# other's older review on screen while the AI's value is current on record, by design (a person's choice of the AI
# value stands): that frame then says its review is not the exam's value on record (``_screen_agrees_with_records``
# checks it on every frame; review 30); the second test moves between two frames.
ACTIONS = ("correct", "accept", "reset", "calibrate", "undo", "redo")
SCALES = (0.5, 0.3, None)  # manual mm per pixel; None: back to the file's


def _act(window, qtbot, rng: random.Random, action: str) -> str:
    if action == "correct":
        offset = QtCore.QPoint(rng.choice((-30, -15, 10, 25)), rng.choice((-20, 15, 40)))
        _drag_tangent(window, qtbot, offset)
        return f"correct {offset.x()},{offset.y()}"
    if action == "other frame":  # between frames 0 and 2
        window.go_to_frame(2 if window.current_frame == 0 else 0)
    elif action == "accept":
        window.accept_frame()
    elif action == "reset":
        window.reset_frame_to_ai()
    elif action == "undo":
        window.undo_stack.undo()
    elif action == "redo":
        window.undo_stack.redo()
    else:
        scale = rng.choice(SCALES)
        calibration = (window.file_calibration if scale is None
                       else window.file_calibration.with_manual(scale, detail=f"test {scale}"))
        window.set_calibration(calibration)
        return f"calibrate {scale}"
    return action


@pytest.mark.parametrize("seed", range(12))
def test_random_review_sequences_keep_the_records_on_what_the_screen_shows(ward, records, qtbot, seed):
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    refused = []
    link.reviewConflict.connect(refused.append)
    link.saveFailed.connect(refused.append)
    rng = random.Random(seed)
    done = []
    for _round in range(2):  # reopened once: the second round starts from what the first left on record
        _open_and_wait(window, link, qtbot, exam_id)
        _screen_agrees_with_records(window, records, exam_id, tolerance=0.05)
        for _ in range(9):
            done.append(_act(window, qtbot, rng, rng.choice(ACTIONS)))
            qtbot.wait(1)  # a refused step's stack fix-up runs on the next turn of the event loop
            assert not refused, (done, refused)
            try:
                _screen_agrees_with_records(window, records, exam_id, tolerance=0.05)
            except AssertionError as exc:
                raise AssertionError(f"after {done}: {exc}") from exc


@pytest.mark.parametrize("seed", range(8))
def test_random_review_sequences_on_two_frames_keep_each_frame_saying_whether_it_is_on_record(ward, records, qtbot,
                                                                                             seed):
    """As above, moving between frames 0 and 2: the records hold one value per exam, the screen a review per frame;
    after every step the value on record is what its frame shows, and every other reviewed frame says it is not the
    exam's value on record."""
    window, link, exam_ids, _ = ward
    exam_id = exam_ids[0]
    refused = []
    link.reviewConflict.connect(refused.append)
    link.saveFailed.connect(refused.append)
    rng = random.Random(1000 + seed)
    done = []
    for _round in range(2):
        _open_and_wait(window, link, qtbot, exam_id)
        _screen_agrees_with_records(window, records, exam_id, tolerance=0.05)
        for _ in range(12):
            done.append(_act(window, qtbot, rng, rng.choice(ACTIONS + ("other frame",) * 2)))
            qtbot.wait(1)
            assert not refused, (done, refused)
            try:
                _screen_agrees_with_records(window, records, exam_id, tolerance=0.05)
            except AssertionError as exc:
                raise AssertionError(f"after {done}: {exc}") from exc
