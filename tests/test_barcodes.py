"""TCGA barcode rules (mustsurv.barcodes)."""

import math

from mustsurv.barcodes import is_normal, patient_of, sample_rank, sample_type


def test_patient_and_sample_type():
    assert patient_of("TCGA-AB-1234-01Z-00-DX1") == patient_of("TCGA-AB-1234") == "TCGA-AB-1234"
    assert sample_type("TCGA-AB-1234-01A-11D-A00X-08") == 1
    assert sample_type("TCGA-AB-1234-11") == 11
    assert sample_type("TCGA-AB-1234") is None and sample_type("TCGA-AB-1234-XY") is None


def test_normal_samples_and_rank():
    assert [is_normal(c) for c in (1, 6, 10, 11, 29, 30, None, math.nan)] == [False, False, True, True, True, False,
                                                                               False, False]
    assert sample_rank(1) < sample_rank(6) and sample_rank(None) == sample_rank(math.nan) == 0.0
