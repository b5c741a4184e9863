"""Which methods go in which paper table and which scenarios each predicts, as data.

The model classes declare the same facts (``scenarios`` and ``same_modalities`` class attributes); this
table lets the workflow plan its jobs and tables without importing torch, and
``tests/test_study_methods.py`` checks that the two agree. A new method is its model module plus one
entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from mustsurv.study.vocabulary import SCENARIOS, Scenario


@dataclass(frozen=True)
class MethodInfo:
    """What the tables need to know of a method.

    Attributes:
        tables: the paper tables it is a row of: ``table1`` (unimodal and complete-data methods) and/or
            ``table2`` (missing-modality methods); MUST is in both.
        scenarios: the scenarios it writes predictions for, in :data:`SCENARIOS` order.
        same_modalities: True when it needs identical modalities at training and inference (the paper's †).
        magnifications: True when it reads every magnification of ``slides.target_mpp`` (DMML), not only the
            main one; the extra magnifications are built only when such a method is requested.
    """

    tables: tuple[str, ...]
    scenarios: tuple[Scenario, ...]
    same_modalities: bool
    magnifications: bool = False


_PATHOLOGY_ONLY: tuple[Scenario, ...] = ("missing_genomics",)
_GENOMICS_ONLY: tuple[Scenario, ...] = ("missing_pathology",)
_COMPLETE: tuple[Scenario, ...] = ("complete",)

METHODS: dict[str, MethodInfo] = {
    # paper Table 1: unimodal and complete-data multimodal methods
    "abmil": MethodInfo(("table1",), _PATHOLOGY_ONLY, True),
    "transmil": MethodInfo(("table1",), _PATHOLOGY_ONLY, True),
    "mlp": MethodInfo(("table1",), _GENOMICS_ONLY, True),
    "snn": MethodInfo(("table1",), _GENOMICS_ONLY, True),
    "survpath": MethodInfo(("table1",), _COMPLETE, True),
    "cmta": MethodInfo(("table1",), _COMPLETE, True),
    # classical elastic-net Cox references (not in the paper), after the deep Table 1 rows
    "coxph_pathology": MethodInfo(("table1",), _PATHOLOGY_ONLY, True),
    "coxph_genomics": MethodInfo(("table1",), _GENOMICS_ONLY, True),
    "coxph_concat": MethodInfo(("table1",), _COMPLETE, True),
    # paper Table 2: missing-modality methods
    "smil": MethodInfo(("table2",), SCENARIOS, False),
    "m3care": MethodInfo(("table2",), SCENARIOS, False),
    "shaspec": MethodInfo(("table2",), SCENARIOS, False),
    "ldcvae": MethodInfo(("table2",), ("complete", "missing_genomics"), False),
    # DMML (the project's second paper): the teacher reads slides + RNA, the distilled student slides only
    "dmml": MethodInfo(("table1",), _COMPLETE, True, magnifications=True),
    "dmml_student": MethodInfo(("table2",), ("complete", "missing_genomics"), False, magnifications=True),
    # MUST closes both tables
    "must": MethodInfo(("table1", "table2"), SCENARIOS, False),
}

REFERENCES: dict[str, MethodInfo] = {
    "must_zero_fill": MethodInfo(("table2",), ("missing_genomics", "missing_pathology"), False),
    "must_ridge": MethodInfo(("table2",), ("missing_genomics", "missing_pathology"), False),
}
"""MUST without its diffusion models (``mustsurv.evaluate.references``): Table 2's reference rows, written by
the main MUST run's prediction step whenever ``must`` is a method of the study."""

HEATMAP_METHODS: tuple[str, ...] = ("must", "abmil", "transmil")
"""Methods whose models have ``patch_attention(bag) -> (N,)``: the ``heatmaps`` target draws their attention
(MUST: its TransMIL class token; docs/heatmaps.md)."""

DMML_RUNS: dict[str, str] = {"dmml": "teacher", "dmml_student": "distilled", "dmml_student_no_kd": "student"}
"""DMML's prediction folders and the checkpoint (``layout.DMML_STAGES``) each predicts with; ``dmml_student_no_kd``
is the student without distillation (the ``dmml_distillation`` ablation, not a table row)."""

DMML_TARGET = "dmml"
"""The target that adds DMML's rows to the tables when ``methods`` does not list them."""

TABLES: tuple[str, ...] = ("table1", "table2")


def method_info(method: str) -> MethodInfo:
    """Look up a method's (or a Table 2 reference's) entry.

    Args:
        method: the method's name.

    Returns:
        Its :class:`MethodInfo`.

    Raises:
        KeyError: the method has no entry in :data:`METHODS`; the message says to add one.
    """
    if method in REFERENCES:
        return REFERENCES[method]
    if method not in METHODS:
        raise KeyError(f"method {method!r} has no entry in mustsurv.study.methods.METHODS (known: "
                       f"{', '.join(METHODS)}); add its tables and scenarios there")
    return METHODS[method]


def table_methods(table: str) -> tuple[str, ...]:
    """The methods of a paper table, in the paper's row order.

    Args:
        table: ``table1`` or ``table2``.

    Returns:
        The method names.

    Raises:
        ValueError: unknown table.
    """
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; use one of {', '.join(TABLES)}")
    return tuple(m for m, info in METHODS.items() if table in info.tables)


def scenarios_of(method: str) -> tuple[Scenario, ...]:
    """The scenarios a method writes predictions for.

    Args:
        method: the method's name.

    Returns:
        The scenarios, in :data:`~mustsurv.study.vocabulary.SCENARIOS` order.

    Raises:
        KeyError: the method has no entry in :data:`METHODS`.
    """
    return method_info(method).scenarios


def dagger_of(method: str) -> bool:
    """Whether a method needs identical modalities at training and inference (the paper's †).

    Args:
        method: the method's name.

    Returns:
        True for a † method.

    Raises:
        KeyError: the method has no entry in :data:`METHODS`.
    """
    return method_info(method).same_modalities
