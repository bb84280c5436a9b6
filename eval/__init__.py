"""DAVIS evaluation with the numbers of ``davis2017-evaluation``: metrics, protocol, reports."""
from eval.davis import EvaluationError, evaluate_davis, evaluate_sequence
from eval.metrics import f_measure, jaccard
from eval.report import format_global_table, write_reports

__all__ = [
    "EvaluationError",
    "evaluate_davis",
    "evaluate_sequence",
    "f_measure",
    "format_global_table",
    "jaccard",
    "write_reports",
]
