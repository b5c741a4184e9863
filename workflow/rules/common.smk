"""Helpers, target builders and global wildcard constraints."""

import re
from functools import cache

from mustsurv.config import check_config, demo_plan, is_demo
from mustsurv.demo import TABLES

check_config(config)

COHORTS = list(config["cohorts"])
DEMO_COHORTS = [c for c in COHORTS if is_demo(config, c)]


wildcard_constraints:
    cohort="|".join(re.escape(c) for c in COHORTS),
    slide=r"[A-Za-z0-9._-]+",
    fold=r"\d+",


@cache
def plan_of(cohort):
    """Deterministic plan of a demo cohort (patients, slides), computed at parse time."""
    return demo_plan(config, cohort)


def demo_dir(cohort):
    return f"resources/demo/{cohort}"


def demo_slide_path(cohort, slide):
    return f"{demo_dir(cohort)}/slides/{slide}.svs"


def demo_table_paths(cohort):
    """The demo generator's table outputs of ``cohort``, by role (see mustsurv.demo.TABLES)."""
    return {role: f"{demo_dir(cohort)}/{name}" for role, name in TABLES.items()}


def demo_targets():
    """Every input file of every demo cohort."""
    out = []
    for c in DEMO_COHORTS:
        out += list(demo_table_paths(c).values())
        out += [demo_slide_path(c, s.slide_id) for s in plan_of(c).slides]
    return out


def batches(ids, size):
    """Consecutive batches of at most ``size`` ids, in sorted order: {"b000": [...], "b001": [...], ...}."""
    ids = sorted(ids)
    return {f"b{i // size:03d}": ids[i:i + size] for i in range(0, len(ids), size)}


def rule_name(*parts):
    """A rule name from parts such as a cohort name (characters other than [A-Za-z0-9_] become _)."""
    return re.sub(r"\W", "_", "_".join(parts))


def all_targets():
    """Targets of `rule all` — as far as the workflow goes."""
    return demo_targets() + omics_targets() + cohort_targets() + slides_targets() + report_targets()


def slide_sheet_of(cohort):
    """Path of the cohort's slide sheet, or None when the cohort lists slides by glob or has none."""
    if is_demo(config, cohort):
        return demo_table_paths(cohort)["slide_sheet"]
    return config["cohorts"][cohort].get("slides", {}).get("sheet")


@cache
def slides_of(cohort):
    """Slides of ``cohort`` as {slide_id: path}, known at parse time (demo plan, sheet or glob)."""
    from mustsurv.cohort.slides import list_slides

    if is_demo(config, cohort):
        return {s.slide_id: demo_slide_path(cohort, s.slide_id) for s in plan_of(cohort).slides}
    block = config["cohorts"][cohort].get("slides", {})
    return list_slides(sheet=block.get("sheet"), glob=block.get("glob"))


# --- genomics and cohort assembly (omics.smk, cohort.smk) ---------------------------------------

from mustsurv.config import has_omics, has_slides, rna_transform_of


def tokens_path(cohort):
    return f"results/cohorts/{cohort}/omics/tokens.h5"


def omics_inputs(cohort):
    """Omics input files of ``cohort`` by role: gene_families plus rna/cnv/maf (list) or mcat_csv."""
    if not has_omics(config, cohort):
        raise ValueError(f"cohort {cohort} has no genomics configured (rna, cnv, maf or mcat_csv)")
    if is_demo(config, cohort):
        t = demo_table_paths(cohort)
        return {"gene_families": t["gene_families"], "rna": t["rna"], "cnv": t["cnv"], "maf": [t["maf"]]}
    block = config["cohorts"][cohort]
    return {k: block[k] for k in ("gene_families", "rna", "cnv", "maf", "mcat_csv") if k in block}


def omics_targets():
    """Family tokens of every cohort with genomics."""
    return [tokens_path(c) for c in COHORTS if has_omics(config, c)]


def cohort_table_path(cohort):
    return f"results/cohorts/{cohort}/cohort.tsv"


def fold_paths(cohort):
    return [f"results/cohorts/{cohort}/splits/fold{k}.json" for k in range(config["cv"]["folds"])]


def cohort_table_inputs(cohort):
    """Survival source, tokens.h5 (cohorts with genomics) and the slide summary (cohorts with slides)."""
    block = config["cohorts"][cohort]
    if is_demo(config, cohort):
        out = {"clinical": demo_table_paths(cohort)["clinical"]}
    else:
        out = {"clinical": block["clinical"]} if "clinical" in block else {"mcat_csv": block["mcat_csv"]}
    if has_omics(config, cohort):
        out["tokens"] = tokens_path(cohort)
    if has_slides(config, cohort):
        out["summary"] = f"results/cohorts/{cohort}/slides/summary.tsv"
    return out


def split_inputs(cohort):
    """The cohort table, plus the external split files when `splits_dir` is configured."""
    out = {"table": cohort_table_path(cohort)}
    splits_dir = config["cohorts"][cohort].get("splits_dir")
    if splits_dir:
        out["external"] = [f"{splits_dir}/splits_{k}.csv" for k in range(config["cv"]["folds"])]
    return out


def cohort_targets():
    """Cohort table and fold files of every cohort."""
    return [p for c in COHORTS for p in [cohort_table_path(c), *fold_paths(c)]]


# --- slides -> patch features (slides.smk) ---------------------------------------------------

from mustsurv.slides.summary import precomputed_features

SLIDES = config["slides"]
ENCODER = SLIDES["encoder"]  # checked against the encoder registry when a slides_embed job starts


def slides_dir(cohort):
    return f"results/cohorts/{cohort}/slides"


def slide_sheet_input(wildcards):
    """The cohort's slide sheet (MPP fallback, patient ids) as an input list (empty without a sheet)."""
    sheet = slide_sheet_of(wildcards.cohort)
    return [sheet] if sheet else []


def features_path(cohort, slide, encoder=ENCODER):
    return f"{slides_dir(cohort)}/features/{encoder}/{slide}.h5"


def slide_features_of(cohort):
    """{slide_id: features h5} of ``cohort``: precomputed files with `features_dir`, else this workflow's."""
    block = config["cohorts"][cohort]
    if "features_dir" in block:
        return precomputed_features(block["features_dir"])
    return {s: features_path(cohort, s) for s in slides_of(cohort)}


def embedded_cohorts():
    """Cohorts whose slides this workflow segments, tiles and embeds (slides, no `features_dir`)."""
    return [c for c in COHORTS if has_slides(config, c) and "features_dir" not in config["cohorts"][c]]


def slide_outputs(cohort, slide):
    """Per-slide outputs of segmentation + tiling (GeoJSON, QC PNG, coords h5) by role."""
    d = slides_dir(cohort)
    return {"geojson": f"{d}/tissue/{slide}.geojson", "qc": f"{d}/tissue/qc/{slide}.png",
            "coords": f"{d}/coords/{slide}.h5"}


def slides_targets():
    """The slide summary of every cohort with pathology (it pulls in every slide's features)."""
    return [f"{slides_dir(c)}/summary.tsv" for c in COHORTS if has_slides(config, c)]


# --- training, evaluation and report (train.smk, evaluate.smk, report.smk) ---------------------

def cohort_data(wc):
    """Inputs of a cohort's training/prediction jobs: cohort table, every fold file, tokens, slide summary."""
    out = {"cohort": cohort_table_path(wc.cohort), "splits": fold_paths(wc.cohort)}
    if has_omics(config, wc.cohort):
        out["tokens"] = tokens_path(wc.cohort)
    if has_slides(config, wc.cohort):
        out["summary"] = f"results/cohorts/{wc.cohort}/slides/summary.tsv"
    return out


FOLDS = list(range(config["cv"]["folds"]))


def per_fold(pattern):
    """``pattern`` (with {cohort}/{method} wildcards and a {fold} field) for every fold, wildcards kept."""
    return [pattern.replace("{fold}", str(k)) for k in FOLDS]


from mustsurv.evaluate.methods import TABLE1, TABLE2, scenarios_of

METHODS = list(config["methods"])
BASELINES = [m for m in METHODS if m != "must"]


def prediction_files(cohort):
    """method -> the cohort's prediction files in fold order."""
    return {
        m: [f"results/cohorts/{cohort}/predictions/{m}/fold{k}.tsv" for k in range(config["cv"]["folds"])]
        for m in METHODS
    }


def cohort_report_inputs(wc):
    out = {
        "cohort": cohort_table_path(wc.cohort),
        "splits": fold_paths(wc.cohort),
        "predictions": [p for paths in prediction_files(wc.cohort).values() for p in paths],
    }
    if is_demo(config, wc.cohort):
        out["truth"] = demo_table_paths(wc.cohort)["truth"]
    return out


def km_path(cohort, method, scenario):
    return f"results/figures/km/{cohort}/{method}_{scenario}.png"


def km_paths(cohort):
    return [km_path(cohort, m, s) for m in METHODS for s in scenarios_of(m)]


def decomposition_paths(cohort):
    return [f"results/figures/decomposition/{cohort}_{kind}.png" for kind in ("ecdf", "cosine_map")]


def report_targets():
    out = ["results/tables/table1.csv", "results/tables/table2.csv", "results/tables/cindex_folds.tsv"]
    for c in COHORTS:
        out += [f"results/cohorts/{c}/table1.csv", f"results/cohorts/{c}/table2.csv", *km_paths(c)]
        if "must" in METHODS:
            out += decomposition_paths(c)
    return out


# --- MUST's analysis experiments (ablation.smk) -------------------------------------------------

from mustsurv.train.variants import ablation_ranks, must_variants

VARIANTS = must_variants(config["ablations"], config["must"]["model"])
ABLATION_RANKS = ablation_ranks(config["ablations"], config["must"]["model"]["dim"])
ABLATION_COHORTS = [c for c in COHORTS if has_slides(config, c) and has_omics(config, c)]
ABLATION_TABLES = {
    "warmup": "results/tables/ablation_warmup.csv",
    "ldm_conditioning": "results/tables/ablation_ldm_conditioning.csv",
    "rank": "results/tables/ablation_rank.csv",
    "training_missingness": "results/tables/table4_training_missingness.csv",
}


def ablation_run_files(label, cohort):
    """Fold prediction files of run ``label`` (``must``, a variant, or either with ``|zero``) in ``cohort``."""
    run, _, zero = label.partition("|")
    folder = f"results/cohorts/{cohort}/predictions/must" if run == "must" else f"results/cohorts/{cohort}/ablations/{run}"
    return [f"{folder}/fold{k}{'_no_ldm' if zero else ''}.tsv" for k in FOLDS]


def ablation_labels(table):
    """The runs a table compares."""
    if table == "warmup":
        return ["must", "no_warmup"]
    if table == "ldm_conditioning":
        return ["must", "ldm_no_cls"]
    if table == "rank":
        main = int(config["must"]["model"]["rank"])
        return ["must" if int(r) == main else f"rank{int(r)}" for r in ABLATION_RANKS]
    labels = ["must", "must|zero"]
    for v in VARIANTS:
        if v.startswith("unpaired"):
            labels += [v, f"{v}|zero"]
    return labels


def ablation_runs(table):
    """{label: {cohort: fold files}} of a table."""
    return {label: {c: ablation_run_files(label, c) for c in ABLATION_COHORTS} for label in ablation_labels(table)}
