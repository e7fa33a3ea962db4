# Stage 1: input data (demo export) and validation.


localrules:
    export_demo_data,


rule export_demo_data:
    output:
        "resources/demo/{dataset}.csv",
    log:
        "logs/demo/{dataset}.log",
    conda:
        "../envs/survival.yaml"
    params:
        code=code_version("export_demo_data.py"),
    script:
        "../scripts/export_demo_data.py"


rule validate_data:
    input:
        data=config["data"]["path"],
    output:
        clean="results/data/clean.parquet",
        schema="results/data/schema.json",
        provenance="results/data/provenance.json",
    log:
        "logs/data/validate_data.log",
    benchmark:
        "benchmarks/data/validate_data.tsv"
    conda:
        "../envs/survival.yaml"
    resources:
        mem_mb=mem_mb_validate,
        attempt=attempt_number,
    params:
        duration_col=config["data"]["duration_col"],
        event_col=config["data"]["event_col"],
        id_col=config["data"]["id_col"],
        features=config["data"]["features"],
        categorical=config["data"]["categorical"],
        keep_index_columns=config["data"]["keep_index_columns"],
        run_type=config["run_type"],
        sample_size=config["sample_size"],
        seed=config["cv"]["seed"],
        min_rows=config["cv"]["n_folds"] * config["cv"]["min_rows_per_fold"],
        max_levels=config["preprocess"]["max_levels"],
        code=code_version("validate_data.py"),
    script:
        "../scripts/validate_data.py"
