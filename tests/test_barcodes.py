"""Patient-id rules and TCGA barcode rules (mustsurv.barcodes)."""

import math

import pytest

from mustsurv.barcodes import (
    PatientIdError,
    check_collisions,
    check_rule,
    is_diagnostic_slide,
    is_normal,
    patient_ids,
    patient_of,
    resolve_rule,
    sample_rank,
    sample_type,
    site_of,
)


def test_patient_and_sample_type():
    assert patient_of("TCGA-AB-1234-01Z-00-DX1", "tcga") == patient_of("TCGA-AB-1234", "tcga") == "TCGA-AB-1234"
    assert sample_type("TCGA-AB-1234-01A-11D-A00X-08") == 1
    assert sample_type("TCGA-AB-1234-11") == 11
    assert sample_type("TCGA-AB-1234") is None and sample_type("TCGA-AB-1234-XY") is None
    # an in-house id that happens to have '-NN' at position 13 carries no TCGA sample type
    assert sample_type("HOSPITAL-202-11A") is None


def test_normal_samples_and_rank():
    assert [is_normal(c) for c in (1, 6, 10, 11, 29, 30, None, math.nan)] == [False, False, True, True, True, False,
                                                                               False, False]
    assert sample_rank(1) < sample_rank(6) and sample_rank(None) == sample_rank(math.nan) == 0.0


def test_auto_is_tcga_only_when_every_id_is_a_barcode():
    tcga = ["TCGA-AB-1234-01A", "TCGA-AB-1235-01Z-00-DX1"]
    assert resolve_rule(tcga, "auto") == "tcga" and patient_ids(tcga, "auto") == ["TCGA-AB-1234", "TCGA-AB-1235"]
    # ids sharing their first 12 characters stay distinct patients (the old 12-character cut merged them)
    inhouse = ["HOSPITAL-2020-0001", "HOSPITAL-2020-0002", "TCGA-AB-1234"]
    assert resolve_rule(inhouse, "auto") == "as_given"
    assert patient_ids(inhouse, "auto") == inhouse
    assert resolve_rule([], "auto") == "as_given"


def test_regex_rule_takes_the_first_group_or_the_whole_match():
    assert patient_ids(["GSM1_P-017_slide2", "GSM2_P-018_slide1"], r"(P-\d+)") == ["P-017", "P-018"]
    assert patient_ids(["C3L-00001-21", "C3N-01234-22"], r"^C3[LN]-\d{5}") == ["C3L-00001", "C3N-01234"]
    with pytest.raises(PatientIdError, match=r"clinical.tsv: 'X-1' does not match"):
        patient_ids(["P-1", "X-1"], r"^(P-\d+)", "clinical.tsv")


def test_tcga_rule_rejects_other_ids_and_bad_rules_are_named():
    with pytest.raises(PatientIdError, match="not a TCGA barcode.*patient_ids"):
        patient_ids(["TCGA-AB-1234", "CPTAC-0001"], "tcga", "rna.tsv")
    with pytest.raises(PatientIdError, match="patient_ids.*regular expression"):
        check_rule("(unclosed")
    check_rule("as_given")
    check_rule(r"^(\w+)")


def test_collisions_name_the_ids_except_under_the_tcga_rule():
    ids = ["P1-a", "P1-b", "P2-a", "P2-a"]
    with pytest.raises(PatientIdError, match=r"rna.tsv: 1 patient id\(s\) collide.*P1 <- P1-a, P1-b"):
        check_collisions(ids, patient_ids(ids, r"^(P\d)"), r"^(P\d)", "rna.tsv")
    check_collisions(["P2-a", "P2-a"], ["P2", "P2"], r"^(P\d)", "rna.tsv")  # one id repeated: no collision
    barcodes = ["TCGA-AB-1234-01A", "TCGA-AB-1234-06A"]
    check_collisions(barcodes, patient_ids(barcodes, "tcga"), "tcga", "rna.tsv")  # samples of one patient


def test_site_and_diagnostic_slides():
    assert site_of("TCGA-2F-A9KO") == "2F"
    with pytest.raises(PatientIdError, match="group_by: site"):
        site_of("P-001")
    assert is_diagnostic_slide("TCGA-2F-A9KO-01Z-00-DX1.195576CF-B739-4BD9-B15B-4A70AE287D3E")
    assert not is_diagnostic_slide("TCGA-2F-A9KO-01A-01-TS1.0C6A3C3B-8F5E-4A0B-9A5C-1F2E3D4C5B6A")
