# Finetune stage: one recognition model per dataset and `finetune.models` entry, trained on the
# shards its model reads (hands, keypoints or frames), SignBERT from the pre-trained encoder.


rule finetune:
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
    params:
        finetune=finetune_config(),
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
