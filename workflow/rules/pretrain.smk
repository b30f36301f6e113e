# Pretrain stage: SignBERT's masked hand-model-aware pre-training on the hands shards of the
# train splits of pretrain.datasets -> the encoder weights (docs/signbert.md).


rule pretrain_signbert:
    input:
        hands=pretrain_hands(),
    output:
        encoder=result("pretrain", "signbert.pt"),
        log_csv=result("pretrain", "log.csv"),
        curves=report(
            result("pretrain", "curves.png"), caption="../report/pretrain_curves.rst", category="Pre-training"
        ),
        feasibility=result("pretrain", "feasibility.json"),
        reconstruction=report(
            result("pretrain", "reconstruction.png"),
            caption="../report/reconstruction.rst",
            category="Pre-training",
        ),
    params:
        pretrain=pretrain_config(),
    log:
        log_path("pretrain", "signbert"),
    benchmark:
        benchmark_path("pretrain", "signbert")
    threads: config["pretrain"]["threads"]
    resources:
        mem_mb=lambda wc, threads: 4000 + 1000 * threads,
        runtime=24 * 60,
        gpu=gpus("pretrain"),
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/pretrain.py"
