# Report figures and tables: `snakemake --report results/report.html` (built-in HTML reporter).
# Cheap plotting jobs, run locally (localrules) on a cluster too.


report: "../report/workflow.rst"


localrules:
    render_leaderboard,
    plot_model_comparison,
    render_ph_table,
    plot_cv_metrics,
    plot_tuning,
    plot_kaplan_meier,
    plot_time_dependent_metrics,
    plot_benchmarks,


rule render_leaderboard:
    input:
        table="results/leaderboard.csv",
    output:
        csv="results/report/leaderboard.csv",
        summary="results/report/leaderboard_summary.csv",
        html=report(
            "results/report/leaderboard.html",
            caption="../report/leaderboard.rst",
            category="1. Leaderboard",
            labels={"figure": "leaderboard"},
        ),
    log:
        "logs/report/render_leaderboard.log",
    conda:
        "../envs/survival.yaml"
    params:
        title=f"Leaderboard (mean and std over folds; best {config['evaluation']['primary_metric']} first)",
        primary_metric=config["evaluation"]["primary_metric"],
        digits=4,
        code=code_version("render_leaderboard.py"),
    script:
        "../scripts/render_leaderboard.py"


rule plot_model_comparison:
    input:
        comparison="results/comparison.csv",
    output:
        plot=report(
            "results/report/comparison.png",
            caption="../report/comparison.rst",
            category="1. Leaderboard",
            labels={"figure": "differences from the best model"},
        ),
    log:
        "logs/report/plot_model_comparison.log",
    conda:
        "../envs/survival.yaml"
    params:
        code=code_version("plot_model_comparison.py"),
    script:
        "../scripts/plot_model_comparison.py"


rule render_ph_table:
    input:
        table="results/ph/schoenfeld.csv",
    output:
        csv="results/report/ph_tests.csv",
        html=report(
            "results/report/ph_tests.html",
            caption="../report/ph_table.rst",
            category="5. Proportional hazards",
            labels={"figure": "Schoenfeld tests"},
        ),
    log:
        "logs/report/render_ph_table.log",
    conda:
        "../envs/survival.yaml"
    params:
        title="Schoenfeld-residual tests of proportional hazards",
        digits=4,
        code=code_version("render_table.py"),
    script:
        "../scripts/render_table.py"


rule plot_cv_metrics:
    input:
        cv_metrics="results/cv_metrics.csv",
    output:
        plot=report(
            "results/report/cv_metrics.png",
            caption="../report/cv_metrics.rst",
            category="2. Cross-validation",
            labels={"figure": "metrics per fold"},
        ),
    log:
        "logs/report/plot_cv_metrics.log",
    conda:
        "../envs/survival.yaml"
    params:
        code=code_version("plot_cv_metrics.py"),
    script:
        "../scripts/plot_cv_metrics.py"


rule plot_tuning:
    input:
        selections=tuning_selections,
    output:
        plot=report(
            "results/report/tuning.png",
            caption="../report/tuning.rst",
            category="2. Cross-validation",
            labels={"figure": "nested tuning"},
        ),
    log:
        "logs/report/plot_tuning.log",
    conda:
        "../envs/survival.yaml"
    params:
        code=code_version("plot_tuning.py"),
    script:
        "../scripts/plot_tuning.py"


rule plot_kaplan_meier:
    input:
        clean="results/data/clean.parquet",
        schema="results/data/schema.json",
    output:
        plot=report(
            "results/report/kaplan_meier.png",
            caption="../report/kaplan_meier.rst",
            category="3. Data",
            labels={"figure": "Kaplan-Meier"},
        ),
    log:
        "logs/report/plot_kaplan_meier.log",
    conda:
        "../envs/survival.yaml"
    params:
        code=code_version("plot_kaplan_meier.py"),
    script:
        "../scripts/plot_kaplan_meier.py"


rule plot_time_dependent_metrics:
    input:
        predictions=cv_predictions_inputs,
        folds="results/splits/folds.parquet",
        grid="results/splits/time_grid.json",
        clean="results/data/clean.parquet",
        schema="results/data/schema.json",
    output:
        table="results/report/time_dependent_metrics.csv",
        calibration_table="results/report/calibration.csv",
        auc=report(
            "results/report/time_auc.png",
            caption="../report/time_auc.rst",
            category="2. Cross-validation",
            labels={"figure": "AUC(t)"},
        ),
        brier=report(
            "results/report/time_brier.png",
            caption="../report/time_brier.rst",
            category="2. Cross-validation",
            labels={"figure": "Brier(t)"},
        ),
        calibration=report(
            "results/report/calibration.png",
            caption="../report/calibration.rst",
            category="2. Cross-validation",
            labels={"figure": "calibration"},
        ),
    log:
        "logs/report/plot_time_dependent_metrics.log",
    benchmark:
        "benchmarks/report/plot_time_dependent_metrics.tsv"
    conda:
        "../envs/survival.yaml"
    params:
        calibration_bins=10,
        code=code_version("plot_time_dependent_metrics.py"),
    script:
        "../scripts/plot_time_dependent_metrics.py"


rule plot_benchmarks:
    input:
        metrics=cv_metrics_inputs,
        ph="results/ph/schoenfeld.csv",
        final=final_targets(),
    output:
        table="results/report/benchmarks.csv",
        plot=report(
            "results/report/benchmarks.png",
            caption="../report/benchmarks.rst",
            category="4. Benchmarks",
            labels={"figure": "runtime and memory"},
        ),
    log:
        "logs/report/plot_benchmarks.log",
    conda:
        "../envs/survival.yaml"
    params:
        benchmark_dir="benchmarks",
        log_dir="logs",
        code=code_version("plot_benchmarks.py"),
    script:
        "../scripts/plot_benchmarks.py"
