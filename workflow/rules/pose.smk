# Pose stage: frames shard -> 133 COCO-WholeBody keypoints per frame (+ per-video quality). A keypoint
# dataset has no frames: pose_import reads its files into the same keypoints shards.


rule pose_shard:
    wildcard_constraints:
        ds=one_of(video_datasets()),
    input:
        manifest=result("{ds}", "manifest", "{shard}.csv"),
        frames=result("{ds}", "frames", "{shard}.h5"),
    output:
        keypoints=result("{ds}", "keypoints", "{shard}.h5"),
        quality=result("{ds}", "keypoints", "{shard}.quality.csv"),
    params:
        pose=lambda wc: stage_params(pose_config(wc.ds)),
    log:
        log_path("pose", "{ds}", "{shard}"),
    benchmark:
        benchmark_path("pose", "{ds}", "{shard}")
    threads: lambda wc: pose_config(wc.ds)["threads"]
    resources:
        mem_mb=lambda wc, threads: 1500 + 1500 * threads,
        runtime=240,
    conda:
        lambda wc: pose_env(wc.ds)
    script:
        "../scripts/pose.py"


rule pose_import:
    wildcard_constraints:
        ds=one_of(keypoint_datasets()),
    input:
        manifest=result("{ds}", "manifest", "{shard}.csv"),
    output:
        keypoints=result("{ds}", "keypoints", "{shard}.h5"),
        quality=result("{ds}", "keypoints", "{shard}.quality.csv"),
        failures=result("{ds}", "keypoints", "{shard}.failures.csv"),
    params:
        cfg=lambda wc: manifest_config(wc.ds),
    log:
        log_path("pose_import", "{ds}", "{shard}"),
    benchmark:
        benchmark_path("pose_import", "{ds}", "{shard}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/pose_import.py"


rule pose_quality:
    input:
        lambda wc: per_shard(wc.ds, "keypoints", "{shard}.quality.csv"),
    output:
        result("{ds}", "keypoints", "quality.csv"),
    log:
        log_path("pose_quality", "{ds}"),
    benchmark:
        benchmark_path("pose_quality", "{ds}")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/pose_quality.py"
