"""Read-only records: one probe. The records say whether they were opened read-only and why (``Records.read_only``),
and the window (``RecordsLink``) and the Patients panel take it from them rather than probing the folder again, so
the window and the records can never disagree; an import into them is refused first, in the records' one line."""
from __future__ import annotations

import pytest

from gui_support import OracleModel, make_window, no_leftover_jobs, read_only_bind_mount  # noqa: F401 (fixtures)
from records_support import DEMO_FRAMES, three_exam_labor
from workstation.records import Records
from workstation.records import database

READ_ONLY_FS = "it is on a read-only file system"


def _filed(tmp_path):
    data = tmp_path / "data"
    with Records(data) as records:
        exam_ids = three_exam_labor(records, tmp_path / "usb")
    return data, exam_ids


def test_the_records_say_whether_they_were_opened_read_only_and_why(tmp_path):
    """A real read-only mount: the records were opened read-only, and say the reason their opening found."""
    data, _ = _filed(tmp_path)
    with Records(data) as records:
        assert records.read_only is None
    with read_only_bind_mount(data, tmp_path / "archive") as archive:
        with Records(archive) as records:
            assert records.read_only == READ_ONLY_FS
            assert str(records.read_only_error()) == (
                f"{archive / 'records'}: the records are read-only ({READ_ONLY_FS}): they can be viewed, nothing can "
                "be saved to them")


def test_the_read_only_reason_is_the_one_found_when_the_records_were_opened(tmp_path, monkeypatch):
    """The folder's probe asked again later may answer otherwise (a disk remounted); the records keep what their
    connection is."""
    data, _ = _filed(tmp_path)
    monkeypatch.setattr(database, "write_problem", lambda _folder: "its folder cannot be written")
    with Records(data) as records:
        monkeypatch.setattr(database, "write_problem", lambda _folder: None)
        assert records.read_only == "its folder cannot be written"


def _window_on(make_window, records):
    from workstation.gui.records_link import RecordsLink

    oracle = OracleModel(n_frames=DEMO_FRAMES, seed=0)
    window = make_window(model_provider=lambda: oracle, size=(1440, 900))
    return window, RecordsLink(window, records, analyze=False)


@pytest.mark.usefixtures("no_leftover_jobs")
def test_the_window_says_read_only_as_the_records_were_opened_not_as_a_second_probe_says(make_window, tmp_path,
                                                                                         monkeypatch):
    """Records opened read-only; the folder's probe, asked again when the window attaches them, says it can be
    written (it was remounted meanwhile). The window still says read-only, as the connection is: before, it
    probed again, offered Import and New patient, and every save then failed."""
    from PySide6 import QtWidgets

    data, _ = _filed(tmp_path)
    monkeypatch.setattr(database, "write_problem", lambda _folder: READ_ONLY_FS)
    records = Records(data)
    monkeypatch.setattr(database, "write_problem", lambda _folder: None)
    try:
        window, link = _window_on(make_window, records)
        assert link.read_only == records.read_only == READ_ONLY_FS
        assert "read-only" in window.error_banner.text and READ_ONLY_FS in window.error_banner.text
        assert window.statusBar().findChild(QtWidgets.QLabel, "recordsReadOnly") is not None
        panel = link.panel
        assert panel.read_only == READ_ONLY_FS
        assert not panel.import_button.isEnabled() and not panel.new_patient_button.isEnabled()
    finally:
        records.close()


@pytest.mark.usefixtures("no_leftover_jobs")
def test_the_window_offers_saving_on_records_opened_writable_whatever_a_later_probe_says(make_window, tmp_path,
                                                                                        monkeypatch):
    from PySide6 import QtWidgets

    data, _ = _filed(tmp_path)
    records = Records(data)
    monkeypatch.setattr(database, "write_problem", lambda _folder: READ_ONLY_FS)
    try:
        window, link = _window_on(make_window, records)
        assert link.read_only is None and records.read_only is None
        assert "read-only" not in (window.error_banner.text or "")
        assert window.statusBar().findChild(QtWidgets.QLabel, "recordsReadOnly") is None
        assert link.panel.read_only is None
        assert link.panel.import_button.isEnabled() and link.panel.new_patient_button.isEnabled()
    finally:
        records.close()


def test_the_patients_panel_alone_on_read_only_records_offers_no_writing(qtbot, tmp_path, monkeypatch):
    """The panel takes the records' own answer, with no one telling it (before: writable until ``set_read_only``)."""
    from workstation.gui.records_dock import PatientRecordsWidget

    data, _ = _filed(tmp_path)
    monkeypatch.setattr(database, "write_problem", lambda _folder: READ_ONLY_FS)
    with Records(data) as records:
        panel = PatientRecordsWidget(records, model_provider=None, analyze=False)
        qtbot.addWidget(panel)
        assert panel.read_only == READ_ONLY_FS
        assert not panel.import_button.isEnabled() and not panel.new_patient_button.isEnabled()
        assert READ_ONLY_FS in panel.import_button.toolTip()
        assert panel.new_patient() is None


def test_an_import_into_read_only_records_is_refused_before_the_scan_is_read_analysed_or_copied(tmp_path,
                                                                                                  monkeypatch):
    """A real read-only mount: ``import_scan`` refuses first, with the records' own read-only line; the file is not
    loaded, no model analyses it, no copy is tried (before: it was analysed, then the copy failed with "this records
    folder cannot be created (Read-only file system)")."""
    from records_support import demo_exam_file
    from workstation import io as workstation_io
    from workstation.inference import pipeline
    from workstation.records import filestore, importer
    from workstation.records.database import RecordsReadOnly

    data, _ = _filed(tmp_path)
    scan = demo_exam_file(tmp_path / "new", seed=7, hours=5.0)
    calls = []

    def refuse(name):
        def called(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called on read-only records")
        return called

    monkeypatch.setattr(workstation_io, "load", refuse("load"))
    monkeypatch.setattr(pipeline, "analyze_cine", refuse("analyze_cine"))
    monkeypatch.setattr(importer, "store_copy", refuse("store_copy"))
    monkeypatch.setattr(filestore, "store_copy", refuse("store_copy"))
    with read_only_bind_mount(data, tmp_path / "archive") as archive:
        with Records(archive) as records:
            with pytest.raises(RecordsReadOnly) as refused:
                importer.import_scan(records, scan, model=object())
            assert str(refused.value) == str(records.read_only_error())
            assert str(refused.value) == (
                f"{archive / 'records'}: the records are read-only ({READ_ONLY_FS}): they can be viewed, nothing can "
                "be saved to them")
            assert len(records.patients()) == 1
    assert calls == []
