# survival-workflow: cross-validated benchmark of survival models.
# Snakefile holds configfile, includes and rule all only (helpers: rules/common.smk).


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/splits.smk"
include: "rules/cv.smk"
include: "rules/aggregate.smk"


rule all:
    default_target: True
    input:
        "results/cv_metrics.csv",
        "results/leaderboard.csv",
