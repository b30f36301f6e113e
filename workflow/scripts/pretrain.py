"""Rule pretrain: hands shards of the pre-training datasets -> signbert.pt (signpipe.pretrain.pretrain;
one torchrun rank per GPU the job holds)."""

from signpipe.launch import on_ranks
from signpipe.logs import log_to

with log_to(snakemake.log[0]):
    on_ranks("signpipe.pretrain:pretrain", snakemake.resources.gpu, snakemake.input.hands, snakemake.output.encoder,
             snakemake.params.pretrain, threads=snakemake.threads)
