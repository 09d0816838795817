"""The experiment matrix of the adaptive-activation paper, its published numbers and tables.

Bodyanskiy & Kostiuk, "Using Adaptive Activation Functions in Pre-Trained
Artificial Neural Network Models" (ICST 2023), trained four KerasNet models
(ReLU, SiLU, Tanh, Sigmoid) and compared each with an adaptive model trained
from scratch, the reference with its activations replaced, and the replaced
model after activation-only fine-tuning. :func:`run_matrix` repeats that on
any dataset of :func:`reactivate.data.load_dataset` and writes the tables
beside the published CIFAR-10 numbers.
"""

from .matrix import (
    DEFAULT_EPOCHS,
    DEFAULT_TUNE_EPOCHS,
    ExperimentError,
    MatrixOptions,
    MatrixResult,
    MatrixStep,
    adaptive_include,
    plan_matrix,
    run_matrix,
)
from .published import BASES, PUBLISHED_RESULTS, TABLES, VARIANTS, PublishedResult, published_result
from .tables import ResultRow, table_csv, table_markdown, tables_markdown, write_tables

__all__ = [
    "BASES",
    "VARIANTS",
    "TABLES",
    "PUBLISHED_RESULTS",
    "PublishedResult",
    "published_result",
    "DEFAULT_EPOCHS",
    "DEFAULT_TUNE_EPOCHS",
    "ExperimentError",
    "MatrixOptions",
    "MatrixResult",
    "MatrixStep",
    "adaptive_include",
    "plan_matrix",
    "run_matrix",
    "ResultRow",
    "table_csv",
    "table_markdown",
    "tables_markdown",
    "write_tables",
]
