# survival-workflow: cross-validated benchmark of survival models.
# Snakefile holds configfile, includes and rule all only (helpers: rules/common.smk).
# config/config.yaml is read from the working directory. As a module of another project
# (docs/module.md) with `config: config`, Snakemake skips it: the project's config is used and
# config/schema.yaml's defaults fill every key it leaves out (rules/common.smk).


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/splits.smk"
include: "rules/spark.smk"
include: "rules/dask.smk"
include: "rules/tuning.smk"
include: "rules/cv.smk"
include: "rules/aggregate.smk"
include: "rules/ph.smk"
include: "rules/final.smk"
include: "rules/report.smk"
include: "rules/synthetic.smk"


rule all:
    default_target: True
    input:
        "results/cv_metrics.csv",
        "results/leaderboard.csv",
        "results/comparison.csv",
        "results/ph/schoenfeld.csv",
        "results/ph/scaled_schoenfeld.png",
        final_targets(),
        "results/report/leaderboard.html",
        "results/report/comparison.png",
        "results/report/ph_tests.html",
        "results/report/cv_metrics.png",
        "results/report/kaplan_meier.png",
        "results/report/time_auc.png",
        "results/report/benchmarks.png",
        tuning_targets(),
