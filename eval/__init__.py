"""DAVIS evaluation with the numbers of ``davis2017-evaluation``: dataset layout, metrics, protocol, reports."""
from eval.datasets import DatasetLayout, DavisLayout, EvaluationError
from eval.davis import evaluate_davis, evaluate_sequence
from eval.metrics import f_measure, jaccard
from eval.report import format_global_table, remove_reports, write_reports

__all__ = [
    "DatasetLayout",
    "DavisLayout",
    "EvaluationError",
    "evaluate_davis",
    "evaluate_sequence",
    "f_measure",
    "format_global_table",
    "jaccard",
    "remove_reports",
    "write_reports",
]
