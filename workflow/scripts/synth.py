"""Rule synth: the synthetic demo corpus of one dataset (signpipe.synth.make_corpus)."""

from signpipe.logs import log_to
from signpipe.synth import make_corpus

with log_to(snakemake.log[0]):
    make_corpus(snakemake.output[0], workers=snakemake.threads, **snakemake.params.corpus)
