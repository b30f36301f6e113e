# Predict: new videos (a folder, or a CSV with a path column) recognised by a dataset's finished run,
# through the run's own stages and trained models (signpipe.predict; docs/predict.md).


rule predict:
    input:
        unpack(predict_inputs),
    output:
        result("{ds}", "predict", "{name}.csv"),
    params:
        run=lambda wc: result(wc.ds),
        model=lambda wc: config["predict"][wc.name]["model"],
        top=lambda wc: config["predict"][wc.name]["top"],
    log:
        log_path("predict", "{ds}", "{name}"),
    benchmark:
        benchmark_path("predict", "{ds}", "{name}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=24 * 60,
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/predict.py"
