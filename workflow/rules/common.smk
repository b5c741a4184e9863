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


def all_targets():
    """Targets of `rule all` — as far as the workflow goes."""
    return demo_targets()


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
