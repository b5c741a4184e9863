"""Config, cohorts and wildcard constraints; every path and target list comes from mustsurv.study."""

import re

from mustsurv.config import check_config
from mustsurv.study import layout
from mustsurv.study.design import StudyDesign, rule_name
from mustsurv.study.methods import scenarios_of

check_config(config)
STUDY = StudyDesign(config)
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


def per_fold(path_of):
    """``path_of(k)`` for every fold (wildcards in the returned patterns are kept)."""
    return [path_of(k) for k in FOLDS]
