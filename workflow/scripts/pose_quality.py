"""Rule pose_quality: per-shard quality tables -> {ds}/keypoints/quality.csv (signpipe.pose.collect_quality)."""

from signpipe.logs import log_to
from signpipe.pose import collect_quality

with log_to(snakemake.log[0]):
    collect_quality(list(snakemake.input), snakemake.output[0])
