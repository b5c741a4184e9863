"""Patient ids: the one place where a slide, sample or table id becomes a patient id, and TCGA barcode rules.

Every id derivation goes through :func:`patient_ids` (a whole table's ids) or :func:`patient_of` (one id
under an explicit rule), with the cohort's ``patient_ids`` rule (:data:`RULES` or a regular expression):

- ``tcga``: the first 12 characters of a TCGA barcode (an id that is not one is an error);
- ``as_given``: the id itself;
- a regular expression: its first capture group, or the whole match when it has no group (``re.search``;
  anchor it with ``^`` to match from the start); an id it does not match is an error;
- ``auto`` (resolved per table by :func:`resolve_rule`): ``tcga`` when every id of the table is a TCGA
  barcode, ``as_given`` otherwise.

Collisions (:func:`check_collisions`): under ``tcga`` several ids of one patient are TCGA's own
sample/aliquot/slide structure, handled by the sample rules below; under any other rule two *distinct*
ids of a per-patient table (survival rows, omics sample columns, MAF samples) that map to one patient are
an error naming them, because nothing says which of them stands for the patient.

A TCGA barcode reads ``TCGA-XX-XXXX-TTV-...``: the first 12 characters (``TCGA-XX-XXXX``) name the
patient, characters 14-15 (``TT``) the sample type (``01`` primary tumour, ``06`` metastasis, ``10``-``29``
normal tissue and controls). Slides, samples, MAF calls, clinical rows and external split files are
mapped to patients with these rules; :mod:`mustsurv.cohort` and :mod:`mustsurv.omics` both import them.

Sample -> patient: normal/control samples (type 10-29) are dropped (:func:`is_normal`); of several tumour
samples of one patient the lowest type code wins (:func:`sample_rank`: 01 primary before 06 metastasis);
the readers average what is left tied (e.g. ``-01A``/``-01B``).

The tissue source site of a TCGA patient is characters 6-7 of its barcode (``TCGA-XX-...``,
:func:`site_of`). Importable without numpy or pandas.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PATIENT_LENGTH = 12
"""Characters of a barcode that name the patient (``TCGA-XX-XXXX``)."""

NORMAL_SAMPLE_TYPES = range(10, 30)
"""Sample-type codes of normal tissue and controls (10-29); such samples never stand for a patient."""


RULES = ("auto", "tcga", "as_given")
"""The named patient-id rules; any other value of ``cohorts.<name>.patient_ids`` is a regular expression."""

TCGA_BARCODE = re.compile(r"^TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}(?:-|$)", re.IGNORECASE)
"""A TCGA patient, sample, aliquot or slide barcode (``TCGA-XX-XXXX`` then nothing or ``-...``)."""


class PatientIdError(ValueError):
    """An id cannot be mapped to a patient under the cohort's rule, or two ids collide; the message says how to fix it."""


def is_tcga(identifier: str) -> bool:
    """Tell whether an id is a TCGA barcode.

    Args:
        identifier: a slide, sample or patient id.

    Returns:
        True for ``TCGA-XX-XXXX`` optionally followed by ``-...``.
    """
    return bool(TCGA_BARCODE.match(identifier))


def check_rule(rule: str) -> None:
    """Check a ``patient_ids`` rule.

    Args:
        rule: ``auto``, ``tcga``, ``as_given`` or a regular expression.

    Raises:
        PatientIdError: the rule is neither a named rule nor a valid regular expression.
    """
    if rule in RULES:
        return
    try:
        re.compile(rule)
    except re.error as err:
        raise PatientIdError(f"patient_ids: {rule!r} is neither one of {list(RULES)} nor a valid regular expression "
                             f"({err}).") from err


def resolve_rule(ids: Iterable[str], rule: str) -> str:
    """Resolve ``auto`` for one table's ids.

    Args:
        ids: the table's ids.
        rule: the cohort's rule.

    Returns:
        ``tcga`` for ``auto`` when every id is a TCGA barcode (and there is at least one), ``as_given`` for
        ``auto`` otherwise; any other rule unchanged.
    """
    if rule != "auto":
        return rule
    ids = list(ids)
    return "tcga" if ids and all(is_tcga(i) for i in ids) else "as_given"


def patient_of(identifier: str, rule: str) -> str:
    """Return the patient id of one slide, sample or patient id under an explicit rule.

    Args:
        identifier: the id.
        rule: ``tcga``, ``as_given`` or a regular expression (``auto`` needs the whole table: use
            :func:`patient_ids`).

    Returns:
        The patient id: the first 12 characters of a TCGA barcode, the id itself, or the regular
        expression's first capture group (whole match without groups).

    Raises:
        PatientIdError: ``tcga`` on an id that is not a TCGA barcode, a regular expression that does not
            match, or ``auto``.
    """
    if rule == "tcga":
        if not is_tcga(identifier):
            raise PatientIdError(f"{identifier!r} is not a TCGA barcode (TCGA-XX-XXXX...); set the cohort's "
                                 f"`patient_ids` to as_given or to a regular expression.")
        return identifier[:PATIENT_LENGTH]
    if rule == "as_given":
        return identifier
    if rule == "auto":
        raise PatientIdError("patient_of needs a resolved rule; resolve `auto` over the whole table (patient_ids).")
    match = re.search(rule, identifier)
    if match is None:
        raise PatientIdError(f"{identifier!r} does not match the cohort's `patient_ids` expression {rule!r}; fix the "
                             f"expression or the id.")
    return match.group(1) if match.re.groups else match.group(0)


def patient_ids(ids: Iterable[str], rule: str, source: str = "ids") -> list[str]:
    """Map a table's ids to patient ids under the cohort's rule (``auto`` resolved over the whole table).

    Args:
        ids: the table's slide, sample or patient ids.
        rule: the cohort's ``patient_ids`` rule.
        source: the table, named in errors.

    Returns:
        The patient id of each id, in order.

    Raises:
        PatientIdError: an id cannot be mapped; the message names ``source``, the id and the fix.
    """
    ids = [str(i) for i in ids]
    resolved = resolve_rule(ids, rule)
    try:
        return [patient_of(i, resolved) for i in ids]
    except PatientIdError as err:
        raise PatientIdError(f"{source}: {err}") from err


def check_collisions(ids: Iterable[str], patients: Iterable[str], rule: str, source: str) -> None:
    """Fail when distinct ids of a per-patient table map to one patient under a rule other than ``tcga``.

    Args:
        ids: the table's ids (repeats of one id are not collisions).
        patients: their patient ids, aligned with ``ids``.
        rule: the resolved rule (``tcga`` never collides: several barcodes of a patient are its samples).
        source: the table, named in the error.

    Raises:
        PatientIdError: naming up to five colliding groups and the fix.
    """
    if rule == "tcga":
        return
    groups: dict[str, set[str]] = {}
    for i, p in zip(ids, patients):
        groups.setdefault(p, set()).add(str(i))
    clash = {p: sorted(v) for p, v in sorted(groups.items()) if len(v) > 1}
    if clash:
        shown = "; ".join(f"{p} <- {', '.join(v)}" for p, v in list(clash.items())[:5])
        raise PatientIdError(f"{source}: {len(clash)} patient id(s) collide under patient_ids rule {rule!r}: {shown}. "
                             f"Keep one row per patient, or set the cohort's `patient_ids` so that distinct ids stay "
                             f"distinct.")


def site_of(patient: str) -> str:
    """Return the tissue source site of a TCGA patient (barcode characters 6-7).

    Args:
        patient: a TCGA barcode.

    Returns:
        The two-character site code (``TCGA-XX-...`` -> ``XX``).

    Raises:
        PatientIdError: the id is not a TCGA barcode.
    """
    if not is_tcga(patient):
        raise PatientIdError(f"{patient!r} is not a TCGA barcode, so it has no tissue source site; `cv.group_by: "
                             f"site` needs TCGA patient ids.")
    return patient[5:7].upper()


def is_diagnostic_slide(slide_id: str) -> bool:
    """Tell whether a TCGA slide barcode is a diagnostic (FFPE) slide.

    Args:
        slide_id: a slide id (``TCGA-XX-XXXX-01Z-00-DX1``, possibly followed by ``.<uuid>``).

    Returns:
        True when the barcode's slide part contains ``-DX`` (TS/BS frozen slides are not diagnostic).
    """
    return "-DX" in slide_id.split(".")[0].upper()


def sample_type(sample_id: str) -> int | None:
    """Return the TCGA sample-type code of a sample id.

    Args:
        sample_id: a TCGA sample, aliquot or slide barcode (``TCGA-XX-XXXX-TTV-...``).

    Returns:
        The sample-type code (``01`` primary tumour, ``06`` metastasis, ``11`` normal ...), or None when
        ``sample_id`` carries no type (a patient barcode, or not a TCGA barcode).
    """
    code = sample_id[PATIENT_LENGTH + 1:PATIENT_LENGTH + 3]
    typed = is_tcga(sample_id) and len(sample_id) >= 15 and sample_id[PATIENT_LENGTH] == "-" and code.isdigit()
    return int(code) if typed else None


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
