"""Reporting: the DICOM objects a PACS shows (SEG, TID 1500 SR, Secondary Capture summary)."""

from screening_node.reporting.writer import ReportObjects, write_report_objects

__all__ = ["ReportObjects", "write_report_objects"]
