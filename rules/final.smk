# Final model(s) refitted on all rows, and predictions for new data.
#
#   final.models: best   -> results/final/best/model.joblib (the leaderboard's first model)
#   final.models: all    -> results/final/{model}/model.joblib for every enabled model
#   snakemake predict                              scores every data/new/*.{csv,parquet}
#   snakemake predict --config predict_input=x.csv scores x.csv -> results/predictions/x.parquet
#   snakemake results/predictions/{name}.parquet   scores data/new/{name}.{csv,parquet}
# with results/final/<predict.model>/model.joblib (default: best).


localrules:
    predict,


rule fit_final_model:
    input:
        clean="results/data/clean.parquet",
        schema="results/data/schema.json",
        grid="results/splits/time_grid.json",
        data_provenance="results/data/provenance.json",
        selection=final_selection_input,
    output:
        model="results/final/{model}/model.joblib",
        provenance="results/final/{model}/provenance.json",
    log:
        "logs/final/{model}.log",
    benchmark:
        "benchmarks/final/{model}.tsv"
    conda:
        "../envs/survival.yaml"
    resources:
        mem_mb=mem_mb_final,
        runtime=runtime_fit,
    params:
        model_params=model_params,
        seed=config["cv"]["seed"],
        n_folds=len(FOLDS),  # the CV's resamples: the final fit's seed is the next one
        min_frequency=config["preprocess"]["rare_min_frequency"],
        max_levels=config["preprocess"].get("max_levels"),
        code=code_version("fit_final_model.py"),
    script:
        "../scripts/fit_final_model.py"


rule fit_best_model:
    input:
        unpack(final_selections_named),
        clean="results/data/clean.parquet",
        schema="results/data/schema.json",
        grid="results/splits/time_grid.json",
        leaderboard="results/leaderboard.csv",
        data_provenance="results/data/provenance.json",
    output:
        model="results/final/best/model.joblib",
        provenance="results/final/best/provenance.json",
    log:
        "logs/final/best.log",
    benchmark:
        "benchmarks/final/best.tsv"
    conda:
        "../envs/survival.yaml"
    resources:
        mem_mb=mem_mb_final,
        runtime=runtime_fit,
    params:
        all_model_params=all_model_params(),
        seed=config["cv"]["seed"],
        n_folds=len(FOLDS),  # the CV's resamples: the final fit's seed is the next one
        min_frequency=config["preprocess"]["rare_min_frequency"],
        max_levels=config["preprocess"].get("max_levels"),
        code=code_version("fit_final_model.py"),
    script:
        "../scripts/fit_final_model.py"


rule predict_new_data:
    input:
        model=predict_model_path(),
        data=predict_input_file,
    output:
        predictions="results/predictions/{name}.parquet",
        provenance="results/predictions/{name}.provenance.json",
    log:
        "logs/predictions/{name}.log",
    benchmark:
        "benchmarks/predictions/{name}.tsv"
    conda:
        "../envs/survival.yaml"
    resources:
        mem_mb=mem_mb_fit,
        attempt=attempt_number,
    params:
        times=config["predict"]["times"],
        batch_size=config["predict"]["batch_size"],
        code=code_version("predict_new_data.py"),
    script:
        "../scripts/predict_new_data.py"


rule predict:
    input:
        predict_targets,
