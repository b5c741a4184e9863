"""Config, cohorts and wildcard constraints; every path and target list comes from mustsurv.study."""

import re

from mustsurv.config import check_config
from mustsurv.study import layout
from mustsurv.study.design import StudyDesign, rule_name
from mustsurv.study.targets import requested_targets
from mustsurv.study.methods import DMML_RUNS, scenarios_of



check_config(config)
STUDY = StudyDesign(config, targets=requested_targets())  # the `dmml` target adds DMML's rows to the tables
STUDY.check_slide_inputs()  # an empty slide list or features_dir fails here, naming the pattern
COHORTS = STUDY.cohorts
FOLDS = STUDY.folds
SLIDES = config["slides"]


wildcard_constraints:
    cohort="|".join(re.escape(c) for c in STUDY.all_cohorts),
    slide=r"[A-Za-z0-9._-]+",
    fold=r"\d+",
    run="|".join(STUDY.must_runs),
    method="|".join(STUDY.baselines) or "(?!)",  # no baseline configured: match nothing
    table="|".join(STUDY.ablation_tables),
    mpp=r"[0-9.]+",


def per_fold(path_of):
    """``path_of(k)`` for every fold (wildcards in the returned patterns are kept)."""
    return [path_of(k) for k in FOLDS]
