"""Gene families (MCAT ``signatures.csv`` layout) and their expansion over the data types present.

The family file has one column per family (header = family name), gene symbols down the column, and
empty cells padding the shorter columns (ragged). Families may overlap (a gene in two families appears
in both tokens); a gene repeated inside one family is counted once.

Expansion (as MCAT/SurvPath/MUST group their input): each family's genes are suffixed with every data
type (``_rnaseq``, ``_cnv``, ``_mut``) and intersected with the features present in the data; the
family's token is the sorted list of the present features, so its size ``d_k`` depends on the cohort.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mustsurv.omics.tables import DATA_TYPES, OmicsInputError, read_table

log = logging.getLogger(__name__)


def read_families(path: str | Path) -> dict[str, list[str]]:
    """Read the gene-family CSV (MCAT signatures.csv layout).

    Args:
        path: the CSV, one column per family with the family name in the header.

    Returns:
        {family name: unique gene symbols in file order}, file column order kept.

    Raises:
        OmicsInputError: a column lacks a family name, a family name is duplicated or a family has no genes.
    """
    path = Path(path)
    df = read_table(path)
    names = [str(c).strip() for c in df.columns]
    if any(not n or n.startswith("Unnamed") for n in names):
        raise OmicsInputError(f"{path}: every column needs a family name in the header (MCAT signatures.csv layout: "
                              f"one column per family, gene symbols below).")
    if len(set(names)) != len(names):
        raise OmicsInputError(f"{path}: duplicated family name(s) {sorted({n for n in names if names.count(n) > 1})}.")
    families: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        genes = df.iloc[:, i].dropna().astype(str).str.strip()
        genes = genes[genes != ""]
        unique = list(dict.fromkeys(genes))
        if len(unique) < len(genes):
            log.info("%s: family %r lists %d gene(s) more than once; counted once (%d unique)", path, name,
                     len(genes) - len(unique), len(unique))
        if not unique:
            raise OmicsInputError(f"{path}: family {name!r} has no genes.")
        families[name] = unique
    log.info("%s: %d families, sizes %s", path, len(families), [len(g) for g in families.values()])
    return families


@dataclass(frozen=True)
class FamilyLayout:
    """Per-family feature lists after expansion over the data types present.

    Attributes:
        names: the family names.
        features: per family k, the sorted ``{GENE}_{type}`` names found in the data.
        sizes_by_type: per family k, the count of its features per data type (``rnaseq``, ``cnv``, ``mut``).
    """

    names: list[str]
    features: list[list[str]]
    sizes_by_type: list[dict[str, int]]

    @property
    def sizes(self) -> list[int]:
        """Token sizes d_k, one per family."""
        return [len(f) for f in self.features]


def expand_families(families: dict[str, list[str]], available: list[str] | set[str], source: str = "data") -> FamilyLayout:
    """Expand every family over the data types and keep the features in ``available``.

    Logs the features of the data that belong to no family (they are not used) and the family genes the
    data lacks, per data type.

    Args:
        families: {family name: gene symbols}.
        available: the ``{GENE}_{type}`` features of the data.
        source: name of the data in messages.

    Returns:
        The family layout.

    Raises:
        OmicsInputError: a family ends up empty (no gene of it measured at all).
    """
    available = set(available)
    names = list(families)
    features, by_type = [], []
    for name in names:
        wanted = {f"{g}_{t}" for g in families[name] for t in DATA_TYPES}
        present = sorted(wanted & available)
        features.append(present)
        by_type.append({t: sum(f.endswith(f"_{t}") for f in present) for t in DATA_TYPES})
    for t in DATA_TYPES:
        in_data = {f for f in available if f.endswith(f"_{t}")}
        if not in_data:
            continue
        used = {f for fs in features for f in fs if f.endswith(f"_{t}")}
        outside = len(in_data - used)
        if outside:
            log.info("%s: %d of %d %s feature(s) belong to no family and are not used", source, outside, len(in_data), t)
        lacking = [len({g for g in families[n]} - {f.rsplit("_", 1)[0] for f in in_data}) for n in names]
        log.info("%s: family genes without %s data, per family: %s", source, t, lacking)
    empty = [n for n, f in zip(names, features) if not f]
    if empty:
        raise OmicsInputError(f"{source}: no feature of family(ies) {empty} is present in the data; check that the "
                              f"gene families and the omics tables use the same (HGNC) gene symbols.")
    layout = FamilyLayout(names=names, features=features, sizes_by_type=by_type)
    log.info("%s: family token sizes %s (per type %s)", source, layout.sizes,
             [[d[t] for t in DATA_TYPES] for d in by_type])
    return layout
