# Stage 3: one job per model x resample ({fold}: fold k of repeat r is r * n_folds + k).


rule fit_model:
    input:
        train="results/splits/fold_{fold}/train.parquet",
        test="results/splits/fold_{fold}/test.parquet",
        preprocessor="results/splits/fold_{fold}/preprocessor.json",
        grid="results/splits/time_grid.json",
        schema="results/data/schema.json",
        splits_provenance="results/splits/provenance.json",
        selection=selection_input,
    output:
        metrics="results/cv/{model}/fold_{fold}/metrics.json",
        predictions="results/cv/{model}/fold_{fold}/predictions.parquet",
        provenance="results/cv/{model}/fold_{fold}/provenance.json",
    log:
        "logs/cv/{model}/fold_{fold}.log",
    benchmark:
        "benchmarks/cv/{model}/fold_{fold}.tsv"
    conda:
        "../envs/survival.yaml"
    resources:
        mem_mb=mem_mb_fit,
        runtime=runtime_fit,
    params:
        model_params=model_params,
        seed=config["cv"]["seed"],
        n_folds=config["cv"]["n_folds"],
        batch_size=config["evaluation"]["batch_size"],
        strict=config["strict"],
        code=code_version("fit_model.py"),
    script:
        "../scripts/fit_model.py"
