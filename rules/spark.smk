# Stage 2, Spark variant: the same outputs as split_data (rules/splits.smk), for big inputs.
# rules/common.smk picks the engine (ETL_ENGINE) from execution.etl_engine and the size of
# data.path; the ruleorder below lets exactly that rule produce results/splits/*, so
# `snakemake -n` shows the rule that will really run (the Dask variant: rules/dask.smk).


if ETL_ENGINE == "spark":

    ruleorder: split_data_spark > split_data > split_data_dask

elif ETL_ENGINE == "dask":

    ruleorder: split_data_dask > split_data > split_data_spark

else:

    ruleorder: split_data > split_data_spark > split_data_dask


rule split_data_spark:
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
        "logs/splits/split_data_spark.log",
    benchmark:
        "benchmarks/splits/split_data_spark.tsv"
    conda:
        "../envs/spark.yaml"
    threads: 4
    resources:
        mem_mb=mem_mb_spark,
    params:
        master=config["execution"]["spark_master"],
        memory=config["execution"]["spark_memory"],
        n_folds=config["cv"]["n_folds"],
        n_repeats=config["cv"]["n_repeats"],
        seed=config["cv"]["seed"],
        min_frequency=config["preprocess"]["rare_min_frequency"],
        max_levels=config["preprocess"]["max_levels"],
        n_times=config["evaluation"]["n_times"],
        time_quantiles=config["evaluation"]["time_quantiles"],
        code=code_version("split_data_spark.py"),
    script:
        "../scripts/split_data_spark.py"
