# Stage 2, Dask variant: the same outputs as split_data (rules/splits.smk), computed on a
# dask.distributed cluster (execution.dask_scheduler: a local cluster sized from this
# rule's threads and mem_mb, or the address of a running scheduler). Which split rule runs
# is the ruleorder of rules/spark.smk.


rule split_data_dask:
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
        "logs/splits/split_data_dask.log",
    benchmark:
        "benchmarks/splits/split_data_dask.tsv"
    conda:
        "../envs/dask.yaml"
    threads: 4
    resources:
        mem_mb=mem_mb_dask,
    params:
        scheduler=config["execution"]["dask_scheduler"],
        n_folds=config["cv"]["n_folds"],
        n_repeats=config["cv"]["n_repeats"],
        seed=config["cv"]["seed"],
        min_frequency=config["preprocess"]["rare_min_frequency"],
        max_levels=config["preprocess"]["max_levels"],
        n_times=config["evaluation"]["n_times"],
        time_quantiles=config["evaluation"]["time_quantiles"],
        code=code_version("split_data_dask.py"),
    script:
        "../scripts/split_data_dask.py"
