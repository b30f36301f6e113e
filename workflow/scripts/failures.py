"""Rule failures: per-shard failure lists -> {ds}/failures.csv (signpipe.decode.collect_failures)."""

from signpipe.decode import collect_failures
from signpipe.logs import log_to

with log_to(snakemake.log[0]):
    collect_failures(list(snakemake.input), snakemake.output[0])
