"""Rule decode: one shard of videos -> JPEG frames (signpipe.decode.decode_shard)."""

from signpipe.decode import decode_shard
from signpipe.logs import log_to

with log_to(snakemake.log[0]):
    cfg = snakemake.params.decode
    decode_shard(
        snakemake.input.manifest, int(snakemake.wildcards.shard), snakemake.output.frames,
        snakemake.output.failures, short_side=cfg["short_side"], jpeg_quality=cfg["jpeg_quality"],
        threads=snakemake.threads,
    )
