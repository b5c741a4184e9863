"""TCGA barcode rules: the patient of a barcode, a sample's type, and which samples stand for a patient.

A TCGA barcode reads ``TCGA-XX-XXXX-TTV-...``: the first 12 characters (``TCGA-XX-XXXX``) name the
patient, characters 14-15 (``TT``) the sample type (``01`` primary tumour, ``06`` metastasis, ``10``-``29``
normal tissue and controls). Slides, samples, MAF calls, clinical rows and external split files are
mapped to patients with these rules; :mod:`mustsurv.cohort` and :mod:`mustsurv.omics` both import them.

Sample -> patient: normal/control samples (type 10-29) are dropped (:func:`is_normal`); of several tumour
samples of one patient the lowest type code wins (:func:`sample_rank`: 01 primary before 06 metastasis);
the readers average what is left tied (e.g. ``-01A``/``-01B``).

Importable without numpy or pandas.
"""

from __future__ import annotations

PATIENT_LENGTH = 12
"""Characters of a barcode that name the patient (``TCGA-XX-XXXX``)."""

NORMAL_SAMPLE_TYPES = range(10, 30)
"""Sample-type codes of normal tissue and controls (10-29); such samples never stand for a patient."""


def patient_of(barcode: str) -> str:
    """Return the TCGA patient barcode of a slide, sample or aliquot id.

    Args:
        barcode: a TCGA barcode (``TCGA-XX-XXXX-...``).

    Returns:
        Its first 12 characters (``TCGA-XX-XXXX``).
    """
    return barcode[:PATIENT_LENGTH]


def sample_type(sample_id: str) -> int | None:
    """Return the TCGA sample-type code of a sample id.

    Args:
        sample_id: a TCGA sample, aliquot or slide barcode (``TCGA-XX-XXXX-TTV-...``).

    Returns:
        The sample-type code (``01`` primary tumour, ``06`` metastasis, ``11`` normal ...), or None when
        ``sample_id`` carries no type (a patient barcode, or not a TCGA barcode).
    """
    code = sample_id[PATIENT_LENGTH + 1:PATIENT_LENGTH + 3]
    return int(code) if len(sample_id) >= 15 and sample_id[PATIENT_LENGTH] == "-" and code.isdigit() else None


def is_normal(code: float | None) -> bool:
    """Tell whether a sample-type code is a normal/control sample.

    Args:
        code: a sample-type code, or NaN/None for no type.

    Returns:
        True for codes 10-29; False otherwise (NaN and None included).
    """
    return code is not None and NORMAL_SAMPLE_TYPES.start <= code < NORMAL_SAMPLE_TYPES.stop  # NaN compares False


def sample_rank(code: float | None) -> float:
    """Rank a tumour sample among a patient's samples.

    Args:
        code: a sample-type code, or NaN/None for no type.

    Returns:
        The preference: lower wins (no type ranks first, as 0.0; 01 primary before 06 metastasis).
    """
    return 0.0 if code is None or code != code else float(code)
