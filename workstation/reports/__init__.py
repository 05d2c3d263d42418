"""Reports of the records, Qt-free: PDF reports of an exam or a labour, and measurement overlays on frames."""
from workstation.reports.chart import timeline_chart
from workstation.reports.overlays import render_overlays
from workstation.reports.pdf import DISCLAIMER, write_exam_report, write_labor_report

__all__ = ["DISCLAIMER", "render_overlays", "timeline_chart", "write_exam_report", "write_labor_report"]
