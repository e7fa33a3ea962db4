# Stage 4: long-format metrics and leaderboard.


localrules:
    aggregate_metrics,


rule aggregate_metrics:
    input:
        metrics=cv_metrics_inputs,
        splits_provenance="results/splits/provenance.json",
    output:
        cv_metrics="results/cv_metrics.csv",
        leaderboard="results/leaderboard.csv",
        comparison="results/comparison.csv",
        provenance="results/provenance.json",
    log:
        "logs/aggregate/aggregate_metrics.log",
    conda:
        "../envs/survival.yaml"
    params:
        primary_metric=config["evaluation"]["primary_metric"],
        code=code_version("aggregate_metrics.py"),
    script:
        "../scripts/aggregate_metrics.py"
