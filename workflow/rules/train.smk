# Finetune stage: one recognition model per dataset and `finetune.models` entry, trained on the
# shards of every stage its model reads (hands, keypoints, frames), SignBERT from the pre-trained
# encoder; a model with phases trains each in its own folder (docs/training.md).


rule finetune_model:
    input:
        unpack(finetune_inputs),
    # checkpoint.pt is written beside these but not declared: Snakemake deletes declared outputs
    # before rerunning a killed job, and the checkpoint is what lets that job resume.
    output:
        predictions=result("{ds}", "models", "{model}", "predictions.h5"),
        log_csv=result("{ds}", "models", "{model}", "log.csv"),
        curves=report(
            result("{ds}", "models", "{model}", "curves.png"),
            caption="../report/curves.rst",
            category="Training",
            subcategory="{ds}",
            labels={"model": "{model}"},
        ),
        figures=report(
            directory(result("{ds}", "models", "{model}", "figures")),
            patterns=["{figure}.png"],
            caption="../report/model_figures.rst",
            category="Training",
            subcategory="{ds}",
            labels={"model": "{model}", "figure": "{figure}"},
        ),
    params:
        finetune=lambda wc: finetune_config(wc.model),
        stages=lambda wc: list(model_stages(wc.model)),
    log:
        log_path("finetune", "{ds}", "{model}"),
    benchmark:
        benchmark_path("finetune", "{ds}", "{model}")
    threads: config["finetune"]["threads"]
    resources:
        mem_mb=lambda wc, threads: 4000 + 1000 * threads,
        runtime=24 * 60,
        gpu=gpus("finetune"),
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/finetune.py"
