"""Listing a cohort's slides with their patient ids: a slide sheet, a glob or a GDC manifest / sample sheet.

Sources (``cohorts.<name>.slides``, exactly one):

- ``sheet``: TSV/CSV with ``slide_id``, ``path`` and optionally ``patient_id``, ``mpp`` (:func:`read_sheet`);
- ``glob``: a file pattern, ``**`` recursive; slide id = file name without its suffix;
- ``gdc_manifest``: a GDC manifest (columns ``id``, ``filename``, ``md5``, ``size``, ``state``); the GDC client
  puts each file at ``<gdc_dir>/<id>/<filename>`` (``gdc_dir`` defaults to the manifest's folder);
- ``gdc_sample_sheet``: a GDC sample sheet (``File ID``, ``File Name``, ``Case ID``, ``Sample ID`` ...), same
  layout; ``Case ID`` is the patient id.

Patient ids come from the table when it has them (``patient_id``, ``Case ID``), else from the slide id
under the cohort's ``patient_ids`` rule (:func:`mustsurv.barcodes.patient_ids`). ``only_dx`` keeps TCGA
diagnostic slides (``-DX`` in the barcode) and leaves non-TCGA ids alone. An empty list is an error
naming the source, never a silent no-op.
"""

from __future__ import annotations

import glob as globmod
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from mustsurv.barcodes import is_diagnostic_slide, is_tcga, patient_ids
from mustsurv.study.vocabulary import PATIENT_ID, SLIDE_SOURCES

log = logging.getLogger(__name__)

SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide")

GDC_MANIFEST_COLUMNS = ("id", "filename")
GDC_SAMPLE_SHEET_COLUMNS = ("File ID", "File Name", "Case ID")


class SlideListError(ValueError):
    """A cohort's slide list cannot be built; the message names the source (file or pattern) and the fix."""


def _is_slide(name: str) -> bool:
    """Whether a file name has a whole-slide image suffix."""
    return Path(name).suffix.lower() in SLIDE_SUFFIXES


def read_sheet(sheet: str | Path, rule: str = "auto") -> pd.DataFrame:
    """Read a slide sheet (TSV or CSV) with columns ``slide_id``, ``path`` [, ``patient_id``, ``mpp``].

    Relative paths are resolved against the sheet's folder. ``patient_id`` may be omitted; it is then
    derived from ``slide_id`` under ``rule``.

    Args:
        sheet: the sheet file; ``.csv`` is read comma-separated, anything else tab-separated.
        rule: the cohort's ``patient_ids`` rule.

    Returns:
        One row per slide, ``path`` made absolute where it was relative.

    Raises:
        SlideListError: a required column is missing or a ``slide_id`` is duplicated.
    """
    sheet = Path(sheet)
    sep = "," if sheet.suffix.lower() == ".csv" else "\t"
    df = pd.read_csv(sheet, sep=sep, dtype={"slide_id": str, PATIENT_ID: str, "path": str})
    missing = {"slide_id", "path"} - set(df.columns)
    if missing:
        raise SlideListError(
            f"slide sheet {sheet}: missing column(s) {sorted(missing)}; it needs slide_id, path "
            f"(and optionally patient_id, mpp)."
        )
    if PATIENT_ID not in df.columns:
        df[PATIENT_ID] = patient_ids(df["slide_id"], rule, f"slide sheet {sheet}")
    dup = df["slide_id"][df["slide_id"].duplicated()].tolist()
    if dup:
        raise SlideListError(f"slide sheet {sheet}: duplicated slide_id {dup[:5]}; each slide must appear once.")
    df["path"] = [p if Path(p).is_absolute() else str(sheet.parent / p) for p in df["path"]]
    return df


def glob_slides(pattern: str, rule: str = "auto") -> pd.DataFrame:
    """List the slide files a glob matches (``**`` matches any depth of folders).

    Args:
        pattern: the glob.
        rule: the cohort's ``patient_ids`` rule.

    Returns:
        Columns slide_id (file name without suffix), patient_id, path; sorted by path.

    Raises:
        SlideListError: two matched files share a slide id.
    """
    paths = [Path(p) for p in sorted(globmod.glob(pattern, recursive=True)) if _is_slide(p)]
    df = pd.DataFrame({"slide_id": [p.stem for p in paths], "path": [str(p) for p in paths]}, dtype=str)
    _check_unique(df, f"glob {pattern!r}")
    df[PATIENT_ID] = patient_ids(df["slide_id"], rule, f"glob {pattern!r}")
    return df


def _read_gdc(table: Path, folder: str | Path | None, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    """Read a GDC manifest or sample sheet (``columns`` required, the first two the file id and name) into slide ids and paths."""
    df = pd.read_csv(table, sep="\t", dtype=str)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SlideListError(f"{what} {table}: missing column(s) {missing}; expected the file the GDC portal "
                             f"writes (columns {list(columns)} ...).")
    file_id, file_name = columns[:2]
    slides = df[df[file_name].map(lambda n: isinstance(n, str) and _is_slide(n))].copy()
    if len(slides) < len(df):
        log.info("%s %s: %d row(s) that are not slide files skipped", what, table, len(df) - len(slides))
    root = Path(folder) if folder else table.parent
    slides["slide_id"] = slides[file_name].map(lambda n: Path(n).stem)
    slides["path"] = [str(root / i / n) for i, n in zip(slides[file_id], slides[file_name])]
    _check_unique(slides, f"{what} {table}")
    absent = [p for p in slides["path"] if not Path(p).is_file()]
    if absent:
        raise SlideListError(f"{what} {table}: {len(absent)} of its {len(slides)} slide(s) are not under {root} "
                             f"(e.g. {absent[0]}); finish the download (gdc-client download -m <manifest> -d {root}) "
                             f"or point `slides.gdc_dir` at the download folder.")
    return slides.reset_index(drop=True)


def read_gdc_manifest(manifest: str | Path, folder: str | Path | None = None, rule: str = "auto") -> pd.DataFrame:
    """Read a GDC manifest (``id``, ``filename``, ``md5``, ``size``, ``state``) as a slide list.

    Args:
        manifest: the manifest (tab-separated).
        folder: the download folder holding ``<id>/<filename>``; None = the manifest's folder.
        rule: the cohort's ``patient_ids`` rule (the manifest has no patient column).

    Returns:
        Columns slide_id (file name without suffix), patient_id, path.

    Raises:
        SlideListError: columns are missing, slide ids repeat, or listed files are not downloaded.
    """
    df = _read_gdc(Path(manifest), folder, GDC_MANIFEST_COLUMNS, "GDC manifest")
    df[PATIENT_ID] = patient_ids(df["slide_id"], rule, f"GDC manifest {manifest}")
    return df[["slide_id", PATIENT_ID, "path"]]


def read_gdc_sample_sheet(sheet: str | Path, folder: str | Path | None = None) -> pd.DataFrame:
    """Read a GDC sample sheet (``File ID``, ``File Name``, ``Case ID``, ``Sample ID`` ...) as a slide list.

    Args:
        sheet: the sample sheet (tab-separated).
        folder: the download folder holding ``<File ID>/<File Name>``; None = the sheet's folder.

    Returns:
        Columns slide_id (file name without suffix), patient_id (``Case ID``; the first of a
        comma-separated list), path.

    Raises:
        SlideListError: columns are missing, slide ids repeat, or listed files are not downloaded.
    """
    df = _read_gdc(Path(sheet), folder, GDC_SAMPLE_SHEET_COLUMNS, "GDC sample sheet")
    df[PATIENT_ID] = df["Case ID"].map(lambda c: str(c).split(",")[0].strip())
    return df[["slide_id", PATIENT_ID, "path"]]


def _check_unique(df: pd.DataFrame, source: str) -> None:
    """Fail when two files of a slide list share a slide id, naming them."""
    dup = df[df["slide_id"].duplicated(keep=False)]
    if len(dup):
        raise SlideListError(f"{source}: several files have the slide id {dup['slide_id'].iloc[0]!r} "
                             f"({', '.join(dup['path'].head(3))}); slide ids (file names without suffix) must be "
                             f"unique - remove the copies or list the slides in a sheet.")


def source_of(block: dict[str, Any]) -> tuple[str, str]:
    """The key and value of a ``slides`` block's slide source.

    Args:
        block: the cohort's ``slides`` block.

    Returns:
        (key, file or pattern), e.g. ``("glob", "data/**/*.svs")``.

    Raises:
        SlideListError: not exactly one of :data:`~mustsurv.study.vocabulary.SLIDE_SOURCES` is given.
    """
    given = [k for k in SLIDE_SOURCES if k in block]
    if len(given) != 1:
        raise SlideListError(f"slides: give exactly one of {', '.join(SLIDE_SOURCES)} (got {given or 'none'}).")
    return given[0], block[given[0]]


def list_slides(block: dict[str, Any], rule: str = "auto", where: str = "slides") -> pd.DataFrame:
    """List a cohort's slides from its ``slides`` block, diagnostic slides only when ``only_dx``.

    Args:
        block: the cohort's schema-filled ``slides`` block.
        rule: the cohort's ``patient_ids`` rule.
        where: the config key, named in errors (``cohorts.<name>.slides``).

    Returns:
        Columns slide_id, patient_id, path (and mpp from a sheet that has it), sorted by slide id.

    Raises:
        SlideListError: the source is unusable or lists no slide; the message names the file or pattern.
    """
    key, value = source_of(block)
    if key == "sheet":
        df = read_sheet(value, rule)
    elif key == "glob":
        df = glob_slides(value, rule)
    elif key == "gdc_manifest":
        df = read_gdc_manifest(value, block.get("gdc_dir"), rule)
    else:
        df = read_gdc_sample_sheet(value, block.get("gdc_dir"))
    if df.empty:
        hint = " (`**` matches sub-folders, e.g. a GDC download's UUID folders)" if key == "glob" else ""
        raise SlideListError(f"{where}.{key}: {value!r} lists no slide file{hint}; fix the {key}.")
    if block["only_dx"]:
        drop = df["slide_id"].map(lambda s: is_tcga(s) and not is_diagnostic_slide(s))
        if drop.any():
            log.info("%s.%s: %d non-diagnostic TCGA slide(s) left out (only_dx), e.g. %s", where, key,
                     int(drop.sum()), df.loc[drop, "slide_id"].iloc[0])
            df = df[~drop]
        if df.empty:
            raise SlideListError(f"{where}.{key}: {value!r} lists no diagnostic (-DX) slide; set `{where}.only_dx: "
                                 f"false` to use frozen-section (TS/BS) slides.")
    return df.sort_values("slide_id").reset_index(drop=True)
