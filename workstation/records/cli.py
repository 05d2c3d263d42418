"""Records subcommands of the ``workstation`` CLI: import, patients, timeline, report, history, correct, confirm,
calibrate.

``register(subparsers)`` adds them to the main parser (``workstation.cli`` wires it). Each command opens the
records of ``--data-dir`` (default: the per-user data folder, or ``WORKSTATION_DATA_DIR``). Errors a user can
fix are ``WorkstationError``s with one-line messages; the main CLI prints them and exits 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from workstation.calibration import MANUAL_MM_PER_PX_RANGE
from workstation.errors import WorkstationError
from workstation.inference.uncertainty import describe_uncertainty
from workstation.measure import describe_hsd
from workstation.records.database import RecordsError
from workstation.json_output import emit_json
from workstation.records.store import chronological_key, display_name


def _iso_datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time: {text!r} (e.g. 2026-03-01T14:30)") from None


def _records(args):
    from workstation.records.store import Records

    return Records(args.data_dir)


def _emit_json(payload) -> None:
    emit_json(payload, None)  # the command line's one JSON writer: NaN and inf as null, numpy as plain numbers


def _fmt(value, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def cmd_import(args) -> int:
    from workstation.records.importer import import_scan

    results, failures = [], []
    with _records(args) as records:
        if records.read_only is not None:  # said first, in the records' one line: before the slow model load
            raise records.read_only_error()
        model = None
        if args.analyze:
            from workstation.inference.engine import load_model

            model = load_model(args.model, device=args.device)
            if model.manifest.placeholder:
                print(f"warning: model {model.manifest.label} is a PLACEHOLDER: its values are not clinically "
                      "meaningful", file=sys.stderr)
        for file in args.files:
            if model is not None and not args.quiet:
                print(f"importing and analysing {Path(file).name}...", file=sys.stderr, flush=True)
            try:
                result = import_scan(records, file, mrn=args.mrn, name=args.name, acquired=args.acquired,
                                     labor_id=args.labor, new_labor=args.new_labor, force_mrn=args.force_mrn,
                                     model=model, refuse_unreadable_date=True)
            except WorkstationError as exc:  # one bad file must not stop the others
                failures.append(str(exc))
                print(f"error: {exc}", file=sys.stderr)
                continue
            except Exception as exc:  # noqa: BLE001 - nor may a fault nobody foresaw; it is named, not hidden
                failures.append(f"{Path(file).name}: {type(exc).__name__}: {exc}")
                print(f"error: {Path(file).name}: could not be imported ({type(exc).__name__}: {exc})",
                      file=sys.stderr)
                continue
            results.append(result)
            if not args.json:
                print(_import_line(records, result, Path(file).name))
    if args.json:
        _emit_json([r.to_json() for r in results])
    if failures:
        raise RecordsError(f"{len(failures)} of {len(args.files)} file(s) not imported (see above)")
    return 0


def _import_line(records, result, file_name: str) -> str:
    exam = result.exam
    if result.duplicate:
        return (f"{file_name}: already imported as exam {exam.id} of MRN {result.patient.mrn} "
                f"({display_name(result.patient.name) or 'no name'}), labour {result.labor.id} (same content); "
                "nothing added")
    values = _values_line(records, records.current_measurement(exam.id))
    return (f"exam {exam.id} <- {file_name}: MRN {result.patient.mrn}, labour {result.labor.id}, acquired "
            f"{exam.acquired.isoformat()} ({_acquired_source(exam.acquired_source)}); {values}")


def _acquired_source(source: str) -> str:
    """Where an exam's time came from, in words where it is not the scan's own: the file's modification time is
    when it was last written (copied), not when it was scanned."""
    if source == "file_mtime":
        return ("file_mtime: the file's modification time, when it was copied, not when it was scanned; give the "
                "scan's time with --acquired")
    return source


def _values_line(records, m) -> str:
    """A measurement row as the window's panel gives it: whose and which frame, then :func:`_values_text`."""
    if m is None:
        return "not analysed"
    whose = "AI" if m.kind == "ai" else f"{m.kind} by {m.by}"
    frame = "no frame chosen" if m.frame_index is None else f"frame {m.frame_index}"
    return f"{whose}, {frame}: {_values_text(records, m)}"


def _values_text(records, m) -> str:
    """AoP; HSD in mm or in pixels with why there is no mm; the head biometry where the exam's frame has any (mm only
    where the calibration gives them, GA with its range, why a value is absent); the AI's uncertainty on the row's
    frame with its level word, named the AI's as the timeline and report name it (it is never a person's)."""
    from workstation.records.timeline import ai_uncertainty_of
    from workstation.reports.values import describe_head, describe_transperineal, shows_head_biometry

    head = shows_head_biometry(records, [m])
    parts = [describe_transperineal(m)]
    if head:
        parts.append(describe_head(m))
    from workstation.sources import values_note

    whose = values_note(m, head)
    return ("; ".join(parts) + (f"; {whose}" if whose else "")
            + f"; AI uncertainty {describe_uncertainty(ai_uncertainty_of(records, m))}")


def cmd_patients(args) -> int:
    with _records(args) as records:
        rows = []
        for patient in records.patients():
            labors = records.labors(patient.id)
            exams = [e for labor in labors for e in records.exams(labor)]
            last = max((e.acquired for e in exams), default=None, key=chronological_key(e.acquired for e in exams))
            rows.append({**patient.to_json(), "labors": [labor.id for labor in labors], "n_exams": len(exams),
                         "last_exam": None if last is None else last.isoformat()})
    if args.json:
        _emit_json(rows)
        return 0
    if not rows:
        print("no patients yet; import an exam with `workstation import FILE --mrn MRN`")
    for row in rows:
        print(f"{row['mrn']:<16} {display_name(row['name']) or '-':<28} born {row['birth_date'] or '-':<10}  "
              f"{_labour_ids(row['labors']):<14} exams {row['n_exams']:<3} "
              f"last {row['last_exam'] or '-'}")
    return 0


def _labour_ids(ids: list[int]) -> str:
    """'labour 2', 'labours 2,5' or 'no labour': the labours' ids, worded so they do not read as a count."""
    if not ids:
        return "no labour"
    return f"labour {ids[0]}" if len(ids) == 1 else f"labours {','.join(map(str, ids))}"


def select_labor(records, mrn: str | None, labor_id: int | None) -> int:
    """The labour of ``--labor`` (checked against ``--mrn`` when both are given) or the MRN's most recent one."""
    if labor_id is not None:
        labor = records.labor(labor_id)
        if mrn is not None and records.patient(labor.patient_id).mrn != mrn.strip():
            raise RecordsError(f"labour {labor_id} is not a labour of MRN {mrn}")
        return labor_id
    if mrn is None:
        raise RecordsError("give --mrn (the patient's most recent labour) or --labor ID")
    labors = records.labors(records.require_patient(mrn).id)
    if not labors:
        raise RecordsError(f"MRN {mrn} has no labour yet; import an exam first")
    return labors[0].id


def cmd_timeline(args) -> int:
    from workstation.records.timeline import StallRule, labor_timeline, point_whose

    with _records(args) as records:
        timeline = labor_timeline(records, select_labor(records, args.mrn, args.labor),
                                  StallRule(args.stall_span_h, args.stall_min_rise_deg))
    if args.json:
        _emit_json(timeline)
        return 0
    patient = timeline["patient"]
    print(f"labour {timeline['labor_id']} of MRN {patient['mrn']} ({display_name(patient['name']) or '-'}), started "
          f"{timeline['start'] or '-'} ({timeline['start_source']})")
    for p in timeline["points"]:
        print(f"  exam {p['exam_id']:<4} {p['acquired']}  {_fmt(p['hours'], ' h', 2):>8}  "
              f"AoP {_fmt(p['aop_deg'], ' deg'):>10}"
              f"  HSD {describe_hsd(p['hsd_mm'], p['hsd_px'], p.get('hsd_mm_reason')):>8}  "
              + point_whose(p)
              + f"  (AI uncertainty {describe_uncertainty(p.get('ai_uncertainty'))})")
    print(f"trend {_fmt(timeline['trend_deg_per_h'], ' deg/h', 2)}; stalled: {'YES' if timeline['stalled'] else 'no'} "
          f"({timeline['stall_check']['reason']}); AoP >= {timeline['aop_threshold_deg']:g} deg is associated with "
          "spontaneous vaginal delivery (Kalache 2009)")
    return 0


def cmd_report(args) -> int:
    from workstation.reports import write_exam_report, write_labor_report

    with _records(args) as records:
        if args.exam is not None:
            path = write_exam_report(records, args.exam, args.out)
        else:
            path = write_labor_report(records, select_labor(records, args.mrn, args.labor), args.out)
    print(path)
    return 0


def cmd_history(args) -> int:
    from workstation.reports.values import describe_head, shows_head_biometry
    from workstation.sources import values_note

    with _records(args) as records:
        events = records.history(args.exam)
        rows = {m.id: m for m in records.measurements(args.exam)}  # with their geometry (the events leave it out)
        head = shows_head_biometry(records, rows.values())
    if args.json:
        _emit_json(events)
        return 0
    for e in events:
        if e["event"] in ("import", "analysis", "calibration"):
            print(f"{e['when']}  {e['event']:<12} {e['by'] or '':<16} {e['detail']}")
        else:
            hsd = describe_hsd(e["hsd_mm"], e["hsd_px"], (e.get("reasons") or {}).get("hsd_mm"))
            if e["hsd_mm"] is not None and e["hsd_px"] is not None:
                hsd += f" ({e['hsd_px']:.1f} px)"
            print(f"{e['when']}  {e['event']:<12} {e['by']:<16} #{e['id']} frame {_fmt(e['frame_index'], digits=0)}  "
                  f"AoP {_fmt(e['aop_deg'], ' deg')}{_absent_why(e, 'aop_deg')}  HSD {hsd}"
                  + (f"  {describe_head(rows.get(e['id'], e))}" if head else "")
                  + (f"  {note}" if (note := values_note(rows.get(e["id"]), head)) else "")
                  + (f"  supersedes #{e['supersedes_id']}" if e["supersedes_id"] else "")
                  + (f"  note: {e['note']}" if e["note"] else ""))
    return 0


def _absent_why(event: dict, key: str) -> str:
    """" (why)" after a history row's absent value, where the row says why it has none; else empty."""
    why = None if event.get(key) is not None else (event.get("reasons") or {}).get(key)
    return f" ({why})" if why else ""


def _geometry_argument(text: str) -> dict:
    """``--geometry``: JSON text, or ``@FILE`` holding it."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise RecordsError(f"cannot read the geometry file {text[1:]}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordsError(f"--geometry is not valid JSON: {exc.msg} at character {exc.pos}") from None


def _show_measurement(records, m, as_json: bool) -> int:
    if as_json:
        _emit_json(m.to_json())
    else:
        print(f"measurement {m.id} ({m.kind} by {m.by}) on exam {m.exam_id} frame {m.frame_index}: "
              f"{_values_text(records, m)}")
    return 0


def _based_on(args) -> dict:
    """``--based-on``: the keyword that makes ``correct``/``confirm`` refuse (``ReviewConflict``, a RecordsError: one
    line, exit 2, nothing written) when someone changed the exam's value since that measurement; nothing without
    it."""
    return {} if args.based_on is _NOT_GIVEN else {"based_on_measurement_id": args.based_on}


def cmd_correct(args) -> int:
    from workstation.records.review import correct

    with _records(args) as records:
        measurement = correct(records, args.exam, args.frame, _geometry_argument(args.geometry), args.user, args.note,
                              **_based_on(args))
        return _show_measurement(records, measurement, args.json)


def cmd_confirm(args) -> int:
    from workstation.records.review import confirm

    with _records(args) as records:
        measurement = confirm(records, args.exam, args.user, args.note, **_based_on(args))
        return _show_measurement(records, measurement, args.json)


def cmd_calibrate(args) -> int:
    """Set an exam's manual calibration, go back to the file's, or (neither given) show the calibration in force."""
    from workstation.records.calibration import set_exam_calibration

    setting = args.mm_per_px is not None or args.file_calibration
    if setting and not (args.user or "").strip():
        raise RecordsError("--user is needed: a calibration is recorded under the name of who set it")
    if not setting and (args.user or args.detail or args.note):
        raise RecordsError("give --mm-per-px X or --file-calibration to change the calibration; without either, "
                           "calibrate only shows the calibration in force")
    with _records(args) as records:
        exam = records.exam(args.exam)
        change = None
        if setting:
            change = set_exam_calibration(records, args.exam, args.mm_per_px, args.user, args.detail, note=args.note)
        current = records.current_calibration(exam.id)
        history = records.calibrations(exam.id)
        again = [f"  measured again ({m.calibration_source}): #{m.id} {m.kind} by {m.by}, frame {m.frame_index}: "
                 f"{_values_text(records, m)}" for m in ([] if change is None else change.measurements)]
    if args.json:
        _emit_json({"exam_id": exam.id, "file_calibration_source": exam.calibration_source,
                    "calibration": None if current is None else current.to_json(),
                    "manual": current is not None and current.is_manual,
                    "history": [c.to_json() for c in history],
                    **({} if change is None else {"changed": change.calibration is not None,
                                                  "measurements": [m.to_json() for m in change.measurements]})})
        return 0
    if change is not None and change.calibration is not None and change.warning:
        print(f"warning: exam {exam.id}: {change.warning}", file=sys.stderr)
    if change is not None and change.calibration is None:
        print(f"exam {exam.id}: that calibration is in force already; nothing changed")
    if current is not None and current.is_manual:
        print(f"exam {exam.id}: {current.describe()} (the file's own: {exam.calibration_source})")
    else:
        back = "" if current is None else f"; {current.describe()}"
        print(f"exam {exam.id}: the file's own calibration ({exam.calibration_source}){back}")
    for line in again:
        print(line)
    return 0


_NOT_GIVEN = object()


def _measurement_id(text: str) -> int | None:
    """``--based-on``: a measurement id, or ``none`` (the exam had no measurement when it was read)."""
    if text.strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a measurement id: {text!r} (a number, or none)") from None


def _add_based_on(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--based-on", metavar="MEASUREMENT_ID", type=_measurement_id, default=_NOT_GIVEN,
                   help=f"the exam's measurement this {what} is based on (its id, as `history`, `timeline --json` or "
                        "an earlier `correct --json` gives it; none: the exam had none): when someone has changed the "
                        "exam's value since (a correction, confirmation or withdrawal), nothing is written and it ends "
                        "in one line saying who changed it, exit status 2")


def _mm_per_px(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (mm per pixel, e.g. 0.25)") from None


def register(subparsers) -> None:
    """Add the records subcommands to ``subparsers`` (from ``parser.add_subparsers()``)."""
    def records_parser(name: str, help_text: str, run) -> argparse.ArgumentParser:
        p = subparsers.add_parser(name, help=help_text)
        p.add_argument("--data-dir", default=None,
                       help="data folder holding records/ (default: the per-user folder or WORKSTATION_DATA_DIR)")
        p.set_defaults(run=run)
        return p

    p = records_parser("import", "file scans into the records (copied in, analysed, under the patient's MRN)",
                       cmd_import)
    p.add_argument("files", nargs="+", help="scan files (DICOM, video, image)")
    p.add_argument("--mrn", help="the patient's MRN; needed when the file has no Patient ID")
    p.add_argument("--force-mrn", action="store_true",
                   help="file under --mrn even though the file's Patient ID differs (kept on the exam)")
    p.add_argument("--name", help="the patient's name, for a new patient (default: the file's)")
    p.add_argument("--acquired", type=_iso_datetime, help="acquisition time (ISO), overriding the file's")
    p.add_argument("--labor", type=int, help="file into this labour id (default: the patient's latest, or a new one)")
    p.add_argument("--new-labor", action="store_true", help="start a new labour with this exam")
    p.add_argument("--analyze", action=argparse.BooleanOptionalAction, default=True,
                   help="analyse with the model and store the AI results (default: yes)")
    p.add_argument("--model", default=None, help="model name or manifest path (default: the shipped model)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"), help="ONNX Runtime device")
    p.add_argument("--json", action="store_true", help="print the imported exams as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")

    p = records_parser("patients", "list the patients in the records", cmd_patients)
    p.add_argument("--json", action="store_true")

    p = records_parser("timeline", "the sonopartogram of a labour: AoP and HSD against hours", cmd_timeline)
    p.add_argument("--mrn", help="the patient (default labour: the most recent)")
    p.add_argument("--labor", type=int, help="the labour id")
    p.add_argument("--json", action="store_true")
    p.add_argument("--stall-span-h", type=float, default=2.0, help="stalled-flag span in hours (default 2)")
    p.add_argument("--stall-min-rise-deg", type=float, default=5.0,
                   help="AoP rise over the span below which the labour is flagged stalled (default 5)")

    p = records_parser("report", "a PDF report of an exam or a labour", cmd_report)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--exam", type=int, help="report one exam")
    which.add_argument("--labor", type=int, help="report a whole labour")
    which.add_argument("--mrn", help="report the patient's most recent labour")
    p.add_argument("out", help="the PDF file to write")

    p = records_parser("history", "the audit trail of an exam: import, analyses, every measurement row", cmd_history)
    p.add_argument("--exam", type=int, required=True)
    p.add_argument("--json", action="store_true")

    p = records_parser("correct", "a person's correction: values recomputed from edited geometry", cmd_correct)
    p.add_argument("--exam", type=int, required=True)
    p.add_argument("--frame", type=int, required=True, help="the frame index the geometry is drawn on")
    p.add_argument("--geometry", required=True,
                   help='geometry JSON in frame pixels, e.g. \'{"aop": {"vertex": [x, y], "superior": [x, y], '
                        '"tangent_point": [x, y]}}\', or @FILE; parts not given come from that frame\'s value in '
                        "force (the exam's current value where it stands on that frame, else that frame's AI "
                        "geometry), and so do the entries a part is given without ('{\"aop\": {\"tangent_point\": "
                        "[x, y]}}' keeps the vertex and superior point). Parts: ps_axis (superior, inferior), aop "
                        "(vertex, superior, tangent_point), hsd (start, end), head_ellipse (center, semi_axes, "
                        "angle_deg). The HSD starts at the PS inferior end: moving that end moves the HSD's start "
                        "too, as in the window, unless hsd.start is given. Only the values whose parts move become "
                        "the person's; the others keep whose they were")
    p.add_argument("--user", required=True, help="who corrects")
    p.add_argument("--note", help="why (kept in the audit trail)")
    _add_based_on(p, "correction")
    p.add_argument("--json", action="store_true")

    p = records_parser("confirm", "a person confirms the exam's current value", cmd_confirm)
    p.add_argument("--exam", type=int, required=True)
    p.add_argument("--user", required=True, help="who confirms")
    p.add_argument("--note", help="kept in the audit trail")
    _add_based_on(p, "confirmation")
    p.add_argument("--json", action="store_true")

    p = records_parser("calibrate", "an exam's manual calibration: set it, go back to the file's, or show it "
                                    "(the exam's values on record are measured again in it)", cmd_calibrate)
    p.add_argument("--exam", type=int, required=True)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--mm-per-px", type=_mm_per_px, help=f"the manual scale: mm per pixel ({MANUAL_MM_PER_PX_RANGE[0]:g} to {MANUAL_MM_PER_PX_RANGE[1]:g}, "
                            "the plausible range of an ultrasound image; a warning where it differs from the file's "
                            "own by more than a few percent)")
    which.add_argument("--file-calibration", action="store_true",
                       help="drop the manual calibration: back to what the file says (kept in the history)")
    p.add_argument("--user", help="who sets it (needed to change it)")
    p.add_argument("--detail", help="how the scale was taken, e.g. '50 mm over 200 px on the depth scale'")
    p.add_argument("--note", help="kept in the audit trail")
    p.add_argument("--json", action="store_true")
