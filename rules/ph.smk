# Proportional-hazards diagnostics: Schoenfeld-residual tests on the whole validated table.


rule test_proportional_hazards:
    input:
        clean="results/data/clean.parquet",
        schema="results/data/schema.json",
        data_provenance="results/data/provenance.json",
    output:
        table="results/ph/schoenfeld.csv",
        plot=report(
            "results/ph/scaled_schoenfeld.png",
            caption="../report/ph_residuals.rst",
            category="5. Proportional hazards",
            labels={"figure": "scaled Schoenfeld residuals"},
        ),
        provenance="results/ph/provenance.json",
    log:
        "logs/ph/test_proportional_hazards.log",
    benchmark:
        "benchmarks/ph/test_proportional_hazards.tsv"
    conda:
        "../envs/survival.yaml"
    resources:
        mem_mb=mem_mb_final,
    params:
        alpha=config["ph"]["alpha"],
        max_rows=config["ph"]["max_rows"],
        penalizer=config["ph"]["penalizer"],
        transforms=config["ph"]["transforms"],
        max_plots=config["ph"]["max_plots"],
        seed=config["cv"]["seed"],
        min_frequency=config["preprocess"]["rare_min_frequency"],
        max_levels=config["preprocess"].get("max_levels"),
        code=code_version("test_proportional_hazards.py"),
    script:
        "../scripts/test_proportional_hazards.py"
