"""A study's design: its cohorts and what each has, folds, methods, MUST runs, and every file the workflow
builds for them (paths from :mod:`mustsurv.study.layout`).

The workflow's parse step builds one :class:`StudyDesign` from the validated config; its methods give the
inputs and outputs of the rules and the target lists. Importable without torch, numpy or plotting
libraries (the demo plan and slide sheets are read lazily, at parse time, only when asked for).
"""

from __future__ import annotations

import math
import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from mustsurv.study import layout
from mustsurv.study.methods import (
    DMML_RUNS,
    DMML_TARGET,
    HEATMAP_METHODS,
    METHODS,
    REFERENCES,
    method_info,
    scenarios_of,
)
from mustsurv.study.runs import (
    MAIN_RUN,
    AblationTable,
    Run,
    Variant,
    ablation_tables,
    must_runs,
)

if TYPE_CHECKING:
    from mustsurv.demo.plan import StudyPlan

OMICS_KEYS = ("rna", "cnv", "maf", "mcat_csv")

FEATURE_DIM_BOUND = 1536
"""Patch-feature width assumed for a job's memory: the widest registered encoder (UNI2-h, TRIDENT's 1536-d)."""
ACTIVATION_FLOATS = 16
"""float32 activations per token and model channel assumed for one forward pass (TransMIL layers, the
specific layer, the cross-attention, their backward in training)."""
PROCESS_MB = 1536
"""Python, torch, the model, its optimiser and the omics tokens of a job."""


def batches(ids: list[str] | dict[str, Any], size: int) -> dict[str, list[str]]:
    """Cut ids into consecutive batches of at most ``size``, in sorted order.

    Args:
        ids: the ids (or a dict keyed by them).
        size: the largest batch.

    Returns:
        ``{"b000": [...], "b001": [...]}``.
    """
    ids = sorted(ids)
    return {f"b{i // size:03d}": ids[i:i + size] for i in range(0, len(ids), size)}


def rule_name(*parts: str) -> str:
    """Make a rule name from parts such as a cohort name.

    Args:
        *parts: the parts, joined with ``_``.

    Returns:
        The name, characters other than [A-Za-z0-9_] replaced by ``_``.
    """
    return re.sub(r"\W", "_", "_".join(parts))


def precomputed_features(features_dir: str | Path, mpp: float | None = None) -> dict[str, str]:
    """List the precomputed features files of a folder (slide id = file name without ``.h5``).

    The main magnification's files lie in ``features_dir`` itself, an extra magnification's in its subfolder
    ``mpp<value>`` (``mpp1`` for 10x), as this workflow writes them.

    Args:
        features_dir: the cohort's ``features_dir``.
        mpp: None for the main magnification, else an extra one's µm/px.

    Returns:
        ``{slide_id: path}`` of its ``.h5`` files, sorted.

    Raises:
        FileNotFoundError: the folder does not exist, or holds no ``.h5`` file; the message names the
            folder and the config key to fix.
    """
    folder = Path(features_dir) if mpp is None else Path(features_dir) / layout.mpp_folder(mpp)
    if not folder.is_dir():
        raise FileNotFoundError(f"features_dir {folder} does not exist; fix `features_dir` in the config"
                                + ("" if mpp is None else " or put that magnification's features there (or drop it "
                                   "from slides.target_mpp)") + ".")
    out = {p.stem: str(p) for p in sorted(folder.glob("*.h5"))}
    if not out:
        raise FileNotFoundError(f"features_dir {folder} holds no <slide_id>.h5 file (pattern {folder / '*.h5'}); "
                                f"point `features_dir` at the folder of TRIDENT/CLAM feature files.")
    return out


def magnifications(slides: dict[str, Any]) -> list[float]:
    """The configured magnifications.

    Args:
        slides: the config's ``slides`` block.

    Returns:
        ``slides.target_mpp`` as a list of µm/px, the main magnification first.
    """
    mpp = slides["target_mpp"]
    return [float(m) for m in (mpp if isinstance(mpp, list) else [mpp])]


class StudyDesign:
    """The files of a study, from its validated (schema-filled) config.

    Attributes:
        config: the config.
        cohorts: the study cohorts (role ``study``: cross-validated, in every table), in config order.
        all_cohorts: every cohort of the config, external test cohorts (role ``external``) included.
        folds: the fold indices 0..k-1.
        methods: the methods, in config order.
        reported: the methods with rows in the tables: ``methods``, plus DMML's when the ``dmml`` target is asked
            for (in :data:`~mustsurv.study.methods.METHODS` order).
        baselines: the methods trained by the ``baseline`` rule (neither MUST nor DMML).
        encoder: the patch encoder's name (``slides.encoder``).
        magnifications: ``slides.target_mpp`` as a list, the main magnification first.
    """

    def __init__(self, config: dict[str, Any], targets: Iterable[str] = ()) -> None:
        """Read the study's cohorts, folds, methods and encoder from the config.

        Args:
            config: the validated (schema-filled) config.
            targets: the targets Snakemake was asked for (``dmml`` adds DMML's methods to the tables).

        Raises:
            KeyError: a method has no entry in :data:`mustsurv.study.methods.METHODS`; the message says to add one.
        """
        self.config = config
        self.all_cohorts: list[str] = list(config["cohorts"])
        self.cohorts: list[str] = [c for c in self.all_cohorts if config["cohorts"][c]["role"] == "study"]
        self.folds: list[int] = list(range(config["cv"]["folds"]))
        self.methods: list[str] = list(config["methods"])
        for method in self.methods:
            method_info(method)  # an unknown method fails at parse time, naming the fix
        extra = [m for m in DMML_RUNS if m in METHODS] if DMML_TARGET in set(targets) else []
        self.reported: list[str] = self.methods + [m for m in extra if m not in self.methods]
        self.baselines: list[str] = [m for m in self.methods if m != MAIN_RUN and m not in DMML_RUNS]
        self.encoder: str = config["slides"]["encoder"]
        self.magnifications: list[float] = magnifications(config["slides"])
        self._plans: dict[str, StudyPlan] = {}

    # --- cohorts ---------------------------------------------------------------------------------

    def block(self, cohort: str) -> dict[str, Any]:
        """The cohort's config block.

        Args:
            cohort: the cohort's name.

        Returns:
            The ``cohorts.<cohort>`` block.

        Raises:
            KeyError: the config has no such cohort.
        """
        return self.config["cohorts"][cohort]

    def is_demo(self, cohort: str) -> bool:
        """Whether a cohort is generated by the demo study generator.

        Args:
            cohort: the cohort's name.

        Returns:
            True for a cohort with a ``demo`` block.
        """
        return "demo" in self.block(cohort)

    def has_genomics(self, cohort: str) -> bool:
        """Whether a cohort has genomics.

        Args:
            cohort: the cohort's name.

        Returns:
            True for a demo cohort, or when any of rna/cnv/maf/mcat_csv is configured.
        """
        return self.is_demo(cohort) or any(k in self.block(cohort) for k in OMICS_KEYS)

    def has_pathology(self, cohort: str) -> bool:
        """Whether a cohort has pathology.

        Args:
            cohort: the cohort's name.

        Returns:
            True for a demo cohort, or when ``slides`` or ``features_dir`` is configured.
        """
        block = self.block(cohort)
        return self.is_demo(cohort) or "slides" in block or "features_dir" in block

    @property
    def demo_cohorts(self) -> list[str]:
        """The demo cohorts (external test cohorts included: their rules exist), in config order."""
        return [c for c in self.all_cohorts if self.is_demo(c)]

    @property
    def paired_cohorts(self) -> list[str]:
        """Cohorts with both modalities (MUST's analysis experiments run on them)."""
        return [c for c in self.cohorts if self.has_pathology(c) and self.has_genomics(c)]

    def rna_transform(self, cohort: str) -> str:
        """The cohort's RNA transform.

        Args:
            cohort: the cohort's name.

        Returns:
            Its own ``rna_transform``, else ``omics.rna_transform``.
        """
        return self.block(cohort).get("rna_transform") or self.config["omics"]["rna_transform"]

    # --- demo inputs -----------------------------------------------------------------------------

    def demo_plan(self, cohort: str) -> StudyPlan:
        """Deterministic plan of a demo cohort (patients, slides), computed once at parse time.

        Args:
            cohort: the cohort's name.

        Returns:
            The plan.
        """
        if cohort not in self._plans:
            from mustsurv.demo.plan import plan_from_config

            self._plans[cohort] = plan_from_config(cohort, self.demo_block(cohort))
        return self._plans[cohort]

    def demo_block(self, cohort: str) -> dict[str, Any]:
        """A demo cohort's ``demo`` block with its ``like`` resolved.

        Args:
            cohort: the cohort's name.

        Returns:
            The block; for a cohort with ``like``, the generating model (``effects``, ``censoring_scale``,
            ``cross_modal``) is the ``like`` cohort's, and ``model`` holds that cohort's own block (its seed
            gives the gene loadings).
        """
        block = dict(self.block(cohort)["demo"])
        like = block["like"]
        if like is not None:
            model = self.block(like)["demo"]
            block.update({k: model[k] for k in ("effects", "censoring_scale", "cross_modal")}, model=dict(model))
        return block

    def demo_slide_ids(self, cohort: str) -> list[str]:
        """The slide ids of a demo cohort, in plan order.

        Args:
            cohort: the cohort's name.

        Returns:
            The ids.
        """
        return [s.slide_id for s in self.demo_plan(cohort).slides]

    def demo_targets(self) -> list[str]:
        """Every input file of every demo cohort."""
        out: list[str] = []
        for c in (c for c in self.demo_cohorts if c in self.cohorts):
            out += list(layout.demo_tables(c).values())
            out += [layout.demo_slide(c, s) for s in self.demo_slide_ids(c)]
        return out

    # --- slides ----------------------------------------------------------------------------------

    def slide_sheet(self, cohort: str) -> str | None:
        """The cohort's slide sheet.

        Args:
            cohort: the cohort's name.

        Returns:
            Its path, or None when the cohort lists slides by glob or has none.
        """
        if self.is_demo(cohort):
            return layout.demo_tables(cohort)["slide_sheet"]
        return self.block(cohort).get("slides", {}).get("sheet")

    def patient_id_rule(self, cohort: str) -> str:
        """The cohort's ``patient_ids`` rule (:mod:`mustsurv.barcodes`).

        Args:
            cohort: the cohort's name.

        Returns:
            ``auto``, ``tcga``, ``as_given`` or a regular expression.
        """
        return self.block(cohort)["patient_ids"]

    def endpoint(self, cohort: str) -> str:
        """The cohort's survival endpoint.

        Args:
            cohort: the cohort's name.

        Returns:
            ``OS``, ``DSS``, ``PFI`` or ``DFI`` (a demo cohort: ``OS``).
        """
        return self.block(cohort)["endpoint"]

    @cached_property
    def _slides(self) -> dict[str, dict[str, tuple[str, str]]]:
        """``{cohort: {slide_id: (path, patient id)}}`` of every cohort with slides (demo plan or ``slides``)."""
        out = {}
        for c in self.all_cohorts:
            if self.is_demo(c):
                out[c] = {s.slide_id: (layout.demo_slide(c, s.slide_id), s.patient_id)
                          for s in self.demo_plan(c).slides}
            elif "slides" in self.block(c):
                from mustsurv.cohort.slides import (
                    list_slides,  # reads tables with pandas
                )

                df = list_slides(self.block(c)["slides"], self.patient_id_rule(c), f"cohorts.{c}.slides")
                out[c] = {s: (p, pid) for s, p, pid in zip(df["slide_id"], df["path"], df["patient_id"])}
            else:
                out[c] = {}
        return out

    def slides(self, cohort: str) -> dict[str, str]:
        """The slides of a cohort, known at parse time (demo plan, sheet, glob or GDC manifest / sample sheet).

        Args:
            cohort: the cohort's name.

        Returns:
            ``{slide_id: path}``.

        Raises:
            mustsurv.cohort.slides.SlideListError: the cohort's slide source lists no slide (naming it).
        """
        return {s: path for s, (path, _) in self._slides[cohort].items()}

    def slide_patients(self, cohort: str) -> dict[str, str]:
        """The patient of each of a cohort's slides (its features files' slides with ``features_dir``).

        Args:
            cohort: the cohort's name.

        Returns:
            ``{slide_id: patient id}``: from the slide list, else (slides only in ``features_dir``) the
            slide ids under the cohort's ``patient_ids`` rule.
        """
        known = {s: pid for s, (_, pid) in self._slides[cohort].items()}
        rest = [s for s in self.slide_features(cohort) if s not in known]
        if rest:
            from mustsurv.barcodes import patient_ids

            known.update(zip(rest, patient_ids(rest, self.patient_id_rule(cohort),
                                               f"cohorts.{cohort}.features_dir")))
        return known

    def slide_features(self, cohort: str, mpp: float | str | None = None) -> dict[str, str]:
        """The features files of a cohort's slides.

        Args:
            cohort: the cohort's name.
            mpp: None for the main magnification, else an extra magnification's µm/px.

        Returns:
            ``{slide_id: features h5}``: the precomputed files with ``features_dir``, else this
            workflow's.

        Raises:
            FileNotFoundError: ``features_dir`` (or its magnification's subfolder) does not exist.
        """
        mpp = None if mpp is None else float(mpp)
        block = self.block(cohort)
        if "features_dir" in block:
            return precomputed_features(block["features_dir"], mpp)
        return {s: layout.features(cohort, s, self.encoder, mpp) for s in self.slides(cohort)}

    @property
    def extra_magnifications(self) -> list[float]:
        """The magnifications after the main one that a reported method reads (none when no method needs them)."""
        needed = any(method_info(m).magnifications for m in self.reported)
        return self.magnifications[1:] if needed else []

    def magnification_summaries(self, cohort: str) -> list[str]:
        """The slide summary of every magnification DMML reads, main first.

        Args:
            cohort: the cohort's name.

        Returns:
            The paths.
        """
        return [layout.slide_summary(cohort)] + [layout.slide_summary(cohort, m) for m in self.magnifications[1:]]

    def check_slide_inputs(self) -> None:
        """List every cohort's slides and features files once, so an empty source fails at parse time.

        Raises:
            mustsurv.cohort.slides.SlideListError: a slide source lists no slide (naming the key and pattern).
            FileNotFoundError: a ``features_dir`` is missing or holds no ``.h5`` file.
        """
        for cohort in self.cohorts:
            if self.has_pathology(cohort):
                self.slide_features(cohort)

    def report_qc_slides(self, cohort: str) -> set[str]:
        """The slides whose QC image the HTML report shows: ``slides.report_qc`` spread evenly over the ids.

        Args:
            cohort: the cohort's name.

        Returns:
            The slide ids.
        """
        ids = sorted(self.slides(cohort))
        n = min(self.config["slides"]["report_qc"], len(ids))
        if n <= 0:
            return set()
        return {ids[round(i * (len(ids) - 1) / max(n - 1, 1))] for i in range(n)}

    def embedded_cohorts(self) -> list[str]:
        """Cohorts whose slides this workflow segments, tiles and embeds (slides, no ``features_dir``)."""
        return [c for c in self.all_cohorts if self.has_pathology(c) and "features_dir" not in self.block(c)]

    def slide_batches(self, cohort: str) -> dict[str, list[str]]:
        """The cohort's slides in batches of ``slides.batch_slides`` (one slide job per batch).

        Args:
            cohort: the cohort's name.

        Returns:
            ``{"b000": [slide ids], ...}``.
        """
        return batches(self.slides(cohort), self.config["slides"]["batch_slides"])

    # --- genomics, cohort table, folds -----------------------------------------------------------

    def omics_inputs(self, cohort: str) -> dict[str, Any]:
        """The omics input files of a cohort by role.

        Args:
            cohort: the cohort's name.

        Returns:
            ``gene_families`` plus ``rna``/``cnv``/``maf`` (a list) or ``mcat_csv``.

        Raises:
            ValueError: the cohort has no genomics configured.
        """
        if not self.has_genomics(cohort):
            raise ValueError(f"cohort {cohort} has no genomics configured (rna, cnv, maf or mcat_csv)")
        if self.is_demo(cohort):
            t = layout.demo_tables(cohort)
            return {"gene_families": t["gene_families"], "rna": t["rna"], "cnv": t["cnv"], "maf": [t["maf"]]}
        block = self.block(cohort)
        return {k: block[k] for k in ("gene_families", *OMICS_KEYS) if k in block}

    def cohort_table_inputs(self, cohort: str) -> dict[str, str]:
        """The inputs of a cohort's patient table.

        Args:
            cohort: the cohort's name.

        Returns:
            The survival source (``clinical`` or ``mcat_csv``), the tokens (cohorts with
            genomics) and the slide summary (cohorts with pathology), by role.
        """
        block = self.block(cohort)
        if self.is_demo(cohort):
            out = {"clinical": layout.demo_tables(cohort)["clinical"]}
        else:
            out = {"clinical": block["clinical"]} if "clinical" in block else {"mcat_csv": block["mcat_csv"]}
        return {**out, **self._modality_inputs(cohort)}

    def _modality_inputs(self, cohort: str) -> dict[str, str]:
        """The tokens (with genomics) and the slide summary (with pathology) of ``cohort``, by role."""
        out = {}
        if self.has_genomics(cohort):
            out["tokens"] = layout.tokens(cohort)
        if self.has_pathology(cohort):
            out["summary"] = layout.slide_summary(cohort)
        return out

    def split_inputs(self, cohort: str) -> dict[str, Any]:
        """The inputs of a cohort's folds.

        Args:
            cohort: the cohort's name.

        Returns:
            The cohort table, plus the external split files when ``splits_dir`` is configured.
        """
        out: dict[str, Any] = {"table": layout.cohort_table(cohort)}
        splits_dir = self.block(cohort).get("splits_dir")
        if splits_dir:
            out["external"] = [f"{splits_dir}/splits_{k}.csv" for k in self.folds]
        return out

    def fold_files(self, cohort: str) -> list[str]:
        """The fold files of a cohort, in fold order.

        Args:
            cohort: the cohort's name.

        Returns:
            The paths.
        """
        return layout.folds(cohort, self.folds)

    def training_inputs(self, cohort: str) -> dict[str, Any]:
        """Inputs of a cohort's training and prediction jobs.

        Args:
            cohort: the cohort's name.

        Returns:
            The cohort table, the fold files, the tokens and the slide summary, by role.
        """
        return {"cohort": layout.cohort_table(cohort), "splits": self.fold_files(cohort),
                **self._modality_inputs(cohort)}

    def training_mem_mb(self, method: str) -> int:
        """Memory (MB) a training or prediction job of ``method`` requests.

        The feature cache (``training.feature_cache_gb``), one forward pass at the token budget
        (``training.max_tokens_per_batch`` tokens of :data:`FEATURE_DIM_BOUND` float32 features plus
        :data:`ACTIVATION_FLOATS` x the model width of activations) and :data:`PROCESS_MB`.

        Args:
            method: ``must`` (or a MUST run), ``dmml`` (``dmml.model.dim``) or a baseline (its ``model.dim``,
                else MUST's width).

        Returns:
            The job's ``mem_mb``.
        """
        training = self.config["training"]
        width = self.config["must"]["model"]["dim"]
        models = {**self.config["baselines"], "dmml": self.config.get("dmml", {})}
        width = models.get(method, {}).get("model", {}).get("dim", width)
        per_token = 4 * (FEATURE_DIM_BOUND + ACTIVATION_FLOATS * width)
        return math.ceil(training["feature_cache_gb"] * 1024 + training["max_tokens_per_batch"] * per_token / 2**20
                         + PROCESS_MB)

    # --- DMML ------------------------------------------------------------------------------------------

    def dmml_inputs(self, cohort: str, stage: str | None = None) -> dict[str, Any]:
        """Inputs of a DMML training or prediction job.

        Args:
            cohort: the cohort's name.
            stage: ``distilled`` adds the teacher and student checkpoints; a prediction passes the stage it reads.

        Returns:
            The cohort's data, every magnification's slide summary (``summaries``) and the checkpoints it reads.
        """
        out = {**self.training_inputs(cohort), "summaries": self.magnification_summaries(cohort)}
        if stage == "distilled":
            out["teacher"] = [layout.dmml_checkpoint(cohort, k, "teacher") for k in self.folds]
            out["student"] = [layout.dmml_checkpoint(cohort, k, "student") for k in self.folds]
        return out

    def dmml_distillation_inputs(self) -> dict[str, dict[str, list[str]]]:
        """The prediction files of the distillation ablation, over the paired cohorts.

        Returns:
            ``{run: {cohort: fold prediction files}}`` for the distilled student and the one without distillation.
        """
        return {run: {c: self.run_predictions(c, Run(run)) for c in self.paired_cohorts}
                for run in ("dmml_student", "dmml_student_no_kd")}

    # --- MUST runs -------------------------------------------------------------------------------

    @cached_property
    def ablation_tables(self) -> dict[str, AblationTable]:
        """The analysis tables by name (built only when asked for)."""
        return ablation_tables(self.config["ablations"], self.config["must"]["model"])

    @cached_property
    def must_runs(self) -> dict[str, Variant]:
        """Every MUST run by name: ``must``, then the analysis variants (built only when asked for)."""
        return must_runs(self.config["ablations"], self.config["must"]["model"])

    def must_checkpoints(self, cohort: str, run: str, stage: int) -> list[str]:
        """A run's checkpoints after a stage, one per fold.

        Args:
            cohort: the cohort's name.
            run: the MUST run.
            stage: 1, 2 or 3.

        Returns:
            The paths in fold order; stages 1 and 2 of a run with ``stage2_from`` are that
            run's.

        Raises:
            KeyError: unknown run.
        """
        variant = self.must_runs[run]
        source = variant.stage2_from if stage in (1, 2) and variant.stage2_from else run
        return [layout.must_checkpoint(cohort, source, k, stage) for k in self.folds]

    def must_stage_inputs(self, cohort: str, run: str, stage: int) -> dict[str, Any]:
        """Inputs of a MUST stage job.

        Args:
            cohort: the cohort's name.
            run: the MUST run.
            stage: 1, 2 or 3.

        Returns:
            The cohort's data and, after stage 1, the run's previous checkpoints (``previous``).
        """
        out = self.training_inputs(cohort)
        if stage > 1:
            out["previous"] = self.must_checkpoints(cohort, run, stage - 1)
        return out

    def run_predictions(self, cohort: str, run: Run) -> list[str]:
        """The fold prediction files of a run in a cohort.

        Args:
            cohort: the cohort's name.
            run: the run (with or without LDM).

        Returns:
            The paths in fold order.
        """
        return [layout.predictions(cohort, run.name, k, ldm=run.ldm) for k in self.folds]

    # --- reports ---------------------------------------------------------------------------------

    @property
    def references(self) -> list[str]:
        """Table 2's reference rows (MUST without its diffusion models), when MUST is a method."""
        return list(REFERENCES) if MAIN_RUN in self.methods else []

    def prediction_files(self, cohort: str) -> dict[str, list[str]]:
        """The cohort's prediction files of every method and of Table 2's references.

        Args:
            cohort: the cohort's name.

        Returns:
            ``{method: paths in fold order}``.
        """
        return {m: self.run_predictions(cohort, Run(m)) for m in [*self.reported, *self.references]}

    def cohort_report_inputs(self, cohort: str) -> dict[str, Any]:
        """Inputs of a cohort's report job.

        Args:
            cohort: the cohort's name.

        Returns:
            The cohort table, the fold files, every prediction file and, for a demo
            cohort, its truth table.
        """
        out: dict[str, Any] = {
            "cohort": layout.cohort_table(cohort),
            "splits": self.fold_files(cohort),
            "predictions": [p for paths in self.prediction_files(cohort).values() for p in paths],
        }
        if self.is_demo(cohort):
            out["truth"] = layout.demo_tables(cohort)["truth"]
        return out

    def km_figures(self, cohort: str) -> list[tuple[str, str, str]]:
        """Every Kaplan–Meier figure of a cohort.

        Args:
            cohort: the cohort's name.

        Returns:
            (method, scenario, figure path) triples.
        """
        return [(m, s, layout.km_figure(cohort, m, s)) for m in self.reported for s in scenarios_of(m)]

    def report_targets(self) -> list[str]:
        """The study tables and every cohort's tables, Kaplan–Meier and decomposition figures."""
        out = [layout.study_table(name) for name in layout.STUDY_TABLES]
        for c in self.cohorts:
            out += [layout.cohort_report(c, "table1.csv"), layout.cohort_report(c, "table2.csv"),
                    layout.cohort_report(c, layout.METRICS_FOLDS)]
            out += [path for _, _, path in self.km_figures(c)]
            if MAIN_RUN in self.methods:
                out += [layout.decomposition_figure(c, kind) for kind in layout.DECOMPOSITION_FIGURES]
        return out

    def ablation_runs(self, table: str) -> dict[str, dict[str, list[str]]]:
        """The prediction files of an analysis table, over the paired cohorts.

        Args:
            table: the table's name.

        Returns:
            ``{run label: {cohort: fold prediction files}}``.

        Raises:
            KeyError: unknown table.
        """
        return {arm.run.label: {c: self.run_predictions(c, arm.run) for c in self.paired_cohorts}
                for arm in self.ablation_tables[table].arms}

    def ablation_inputs(self, table: str) -> list[str]:
        """Every prediction file an analysis table reads.

        Args:
            table: the table's name.

        Returns:
            The paths.

        Raises:
            KeyError: unknown table.
        """
        return [p for runs in self.ablation_runs(table).values() for paths in runs.values() for p in paths]

    def ablation_targets(self) -> list[str]:
        """The analysis tables and their figures."""
        out = [layout.ablation_table(name) for name in self.ablation_tables]
        out += [layout.ablation_figure(t.name) for t in self.ablation_tables.values() if t.figure]
        return out

    # --- attention heatmaps (target `heatmaps`, not in the default run) --------------------------

    def heatmap_cohorts(self) -> list[str]:
        """Cohorts whose slide files are known (demo, sheet or glob): heatmaps need the slides' pixels."""
        return [c for c in self.cohorts if self.has_pathology(c) and self.slides(c)]

    def heatmap_methods(self) -> list[str]:
        """The study's methods that expose patch attention, in the study's order."""
        return [m for m in self.methods if m in HEATMAP_METHODS]

    def heatmap_inputs(self, cohort: str, method: str) -> dict[str, Any]:
        """Inputs of a method's heatmap job in a cohort.

        Args:
            cohort: the cohort's name.
            method: a heatmap method.

        Returns:
            The cohort table, fold files, slide summary, per-fold models (MUST: the main run's stage-3
            checkpoints) and the slide files, by role.
        """
        models = (self.must_checkpoints(cohort, MAIN_RUN, 3) if method == MAIN_RUN
                  else [layout.baseline_model(cohort, method, k) for k in self.folds])
        sheet = self.slide_sheet(cohort)
        return {"cohort": layout.cohort_table(cohort), "splits": self.fold_files(cohort),
                "summary": layout.slide_summary(cohort), "models": models,
                "slides": list(self.slides(cohort).values()), "sheet": [sheet] if sheet else []}

    def heatmap_targets(self) -> list[str]:
        """Every heatmap folder: cohorts with slides x methods with patch attention."""
        return [layout.heatmaps_dir(c, m) for c in self.heatmap_cohorts() for m in self.heatmap_methods()]

    # --- final models, bundles, external validation ----------------------------------------------

    @property
    def deploy_methods(self) -> list[str]:
        """The methods the ``external`` target bundles (``deploy.methods``; empty = every method)."""
        return list(self.config["deploy"]["methods"]) or list(self.methods)

    @property
    def external_pairs(self) -> list[tuple[str, str]]:
        """The ``external`` pairs as (train, test) cohort names."""
        return [(p["train"], p["test"]) for p in self.config["external"]]

    def bundle_inputs(self, cohort: str, method: str) -> dict[str, Any]:
        """Inputs of a bundle job: the cohort's data and the method's fold models.

        Args:
            cohort: the cohort's name.
            method: the method.

        Returns:
            The training inputs plus ``stage1``/``stage2``/``stage3`` (MUST) or ``models`` (a baseline), in fold
            order.
        """
        out = self.training_inputs(cohort)
        if method == MAIN_RUN:
            out.update({f"stage{s}": self.must_checkpoints(cohort, MAIN_RUN, s) for s in layout.MUST_STAGES})
        else:
            out["models"] = [layout.baseline_model(cohort, method, k) for k in self.folds]
        return out

    def external_test_inputs(self, cohort: str) -> dict[str, Any]:
        """What an external prediction reads of its test cohort.

        Args:
            cohort: the test cohort.

        Returns:
            Its table, tokens and slide summary (those it has), by role; ``truth`` for a demo cohort.
        """
        out: dict[str, Any] = {"cohort": layout.cohort_table(cohort), **self._modality_inputs(cohort)}
        if self.is_demo(cohort):
            out["truth"] = layout.demo_tables(cohort)["truth"]
        return out

    def external_km_figures(self, train: str, test: str) -> dict[tuple[str, str], str]:
        """The Kaplan–Meier figures of an external pair.

        Args:
            train: the training cohort.
            test: the test cohort.

        Returns:
            (method, scenario) -> path.
        """
        return {(m, s): layout.external_km(train, test, m, s) for m in self.deploy_methods for s in scenarios_of(m)}

    def external_targets(self) -> list[str]:
        """The ``external`` target: every pair's metrics, summary and figures, and the study table."""
        out = [layout.study_table(layout.EXTERNAL_TABLE)] if self.external_pairs else []
        for train, test in self.external_pairs:
            out += [layout.external_metrics(train, test), layout.external_summary(train, test)]
            out += list(self.external_km_figures(train, test).values())
        return out

    # --- everything ------------------------------------------------------------------------------

    def all_targets(self) -> list[str]:
        """Targets of the default run: demo inputs, tokens, cohort tables and folds, slide summaries, reports."""
        out = self.demo_targets()
        out += [layout.tokens(c) for c in self.cohorts if self.has_genomics(c)]
        out += [p for c in self.cohorts for p in [layout.cohort_table(c), *self.fold_files(c)]]
        out += [layout.slide_summary(c) for c in self.cohorts if self.has_pathology(c)]
        return out + self.report_targets()
