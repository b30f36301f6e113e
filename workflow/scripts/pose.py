"""Rule pose: one frames shard -> keypoints shard + quality table (signpipe.pose.extract_shard)."""

from signpipe.logs import log_to
from signpipe.pose import extract_shard
from signpipe.pose.native_log import native_log

# The guard keeps extract_shard's spawned worker processes, which import this file again, from
# running the job a second time. MediaPipe's native log goes to the job's log file (native_log).
if __name__ == "__main__":
    with log_to(snakemake.log[0]), native_log(snakemake.params.pose.get("backend") == "mediapipe"):
        extract_shard(
            snakemake.input.manifest, snakemake.input.frames, snakemake.output.keypoints,
            snakemake.output.quality, snakemake.params.pose, threads=snakemake.threads,
        )
