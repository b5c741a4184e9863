"""The method table metadata (mustsurv.study.methods) agrees with the registered model classes."""

from __future__ import annotations

import pytest

from mustsurv.models.registry import available_models, model_class
from mustsurv.study.methods import METHODS, scenarios_of, table_methods
from mustsurv.study.vocabulary import SCENARIOS


def test_every_registered_model_has_an_entry_and_no_entry_lacks_a_model() -> None:
    assert sorted(METHODS) == available_models()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_entry_matches_the_model_class(method: str) -> None:
    cls = model_class(method)
    declared = getattr(cls, "scenarios", SCENARIOS)
    assert scenarios_of(method) == tuple(s for s in SCENARIOS if s in declared)
    assert METHODS[method].same_modalities == bool(getattr(cls, "same_modalities", False))


def test_tables_keep_the_papers_row_order() -> None:
    assert table_methods("table1") == ("abmil", "transmil", "mlp", "snn", "survpath", "cmta", "coxph_pathology",
                                       "coxph_genomics", "coxph_concat", "dmml", "must")
    assert table_methods("table2") == ("smil", "m3care", "shaspec", "ldcvae", "dmml_student", "must")
    with pytest.raises(ValueError, match="unknown table"):
        table_methods("table3")
