# Nested tuning: for a model with a `tune` space, an inner cross-validation on each outer
# training fold picks its parameters; fit_model then refits them on the whole outer
# training fold and scores the outer test fold (docs/tuning.md). {resample}: an outer
# resample, or `all`: the same inner procedure on every row, for the final model.


rule split_inner_folds:
    input:
        clean="results/data/clean.parquet",
        schema="results/data/schema.json",
        folds=outer_folds_input,
    output:
        subset=temp("results/tuning/splits/fold_{resample}/clean.parquet"),
        folds="results/tuning/splits/fold_{resample}/folds.parquet",
        grid="results/tuning/splits/fold_{resample}/time_grid.json",
        train=inner_split("train.parquet"),
        test=inner_split("test.parquet"),
        preprocessor=inner_split("preprocessor.json"),
    log:
        "logs/tuning/splits/fold_{resample}.log",
    benchmark:
        "benchmarks/tuning/splits/fold_{resample}.tsv"
    conda:
        "../envs/survival.yaml"
    resources:
        mem_mb=mem_mb_split,
    params:
        n_folds=config["cv"]["n_folds"],
        n_resamples=len(FOLDS),  # fold_all (the final model's) is resample n_resamples
        seed=config["cv"]["seed"],
        min_frequency=config["preprocess"]["rare_min_frequency"],
        max_levels=config["preprocess"]["max_levels"],
        n_times=config["evaluation"]["n_times"],
        time_quantiles=config["evaluation"]["time_quantiles"],
        code=code_version("split_inner_folds.py"),
    script:
        "../scripts/split_inner_folds.py"


rule score_candidates:
    input:
        grid="results/tuning/splits/fold_{resample}/time_grid.json",
        train=inner_split("train.parquet"),
        test=inner_split("test.parquet"),
        preprocessor=inner_split("preprocessor.json"),
        schema="results/data/schema.json",
    output:
        scores="results/tuning/{model}/fold_{resample}/group_{group}.json",
    log:
        "logs/tuning/{model}/fold_{resample}/group_{group}.log",
    benchmark:
        "benchmarks/tuning/{model}/fold_{resample}/group_{group}.tsv"
    conda:
        "../envs/survival.yaml"
    resources:
        mem_mb=mem_mb_tune,
    params:
        candidates=group_candidates,
        metric=config["tuning"]["metric"],
        seed=config["cv"]["seed"],
        n_resamples=len(FOLDS),
        batch_size=config["evaluation"]["batch_size"],
        code=code_version("score_candidates.py"),
    script:
        "../scripts/score_candidates.py"


rule select_parameters:
    input:
        scores=candidate_scores,
    output:
        selection="results/tuning/{model}/fold_{resample}/selection.json",
    log:
        "logs/tuning/{model}/fold_{resample}/selection.log",
    conda:
        "../envs/survival.yaml"
    params:
        metric=config["tuning"]["metric"],
        code=code_version("select_parameters.py"),
    script:
        "../scripts/select_parameters.py"
