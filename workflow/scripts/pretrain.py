"""Rule pretrain: hands shards of the pre-training datasets -> signbert.pt (signpipe.pretrain.pretrain)."""

from signpipe.logs import log_to
from signpipe.pretrain import pretrain

with log_to(snakemake.log[0]):
    pretrain(snakemake.input.hands, snakemake.output.encoder, snakemake.params.pretrain, threads=snakemake.threads)
