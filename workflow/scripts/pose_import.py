"""Rule pose_import: a keypoint dataset's shard manifest -> keypoints shard, quality and failures (signpipe.pose.importer)."""

from signpipe.logs import log_to
from signpipe.pose.importer import import_shard

with log_to(snakemake.log[0]):
    import_shard(
        snakemake.input.manifest, snakemake.output.keypoints, snakemake.output.quality,
        snakemake.output.failures, snakemake.params.cfg,
    )
