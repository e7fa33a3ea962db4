# Stage 2: stratified folds (of every CV repeat), evaluation time grid, fold-fitted preprocessing (pandas ETL).


rule split_data:
    input:
        clean="results/data/clean.parquet",
        schema="results/data/schema.json",
        data_provenance="results/data/provenance.json",
    output:
        folds="results/splits/folds.parquet",
        grid="results/splits/time_grid.json",
        train=expand("results/splits/fold_{fold}/train.parquet", fold=FOLDS),
        test=expand("results/splits/fold_{fold}/test.parquet", fold=FOLDS),
        preprocessor=expand("results/splits/fold_{fold}/preprocessor.json", fold=FOLDS),
        provenance="results/splits/provenance.json",
    log:
        "logs/splits/split_data.log",
    benchmark:
        "benchmarks/splits/split_data.tsv"
    conda:
        "../envs/survival.yaml"
    resources:
        mem_mb=mem_mb_split,
    params:
        n_folds=config["cv"]["n_folds"],
        n_repeats=config["cv"]["n_repeats"],
        seed=config["cv"]["seed"],
        min_frequency=config["preprocess"]["rare_min_frequency"],
        max_levels=config["preprocess"]["max_levels"],
        n_times=config["evaluation"]["n_times"],
        time_quantiles=config["evaluation"]["time_quantiles"],
        code=code_version("split_data.py"),
    script:
        "../scripts/split_data.py"
