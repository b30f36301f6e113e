"""Rule finetune: one dataset's shards per stage (+ signbert.pt) -> one model's checkpoints and predictions.h5
(signpipe.finetune.finetune)."""

from pathlib import Path

from signpipe.finetune import finetune, num_classes
from signpipe.logs import log_to

with log_to(snakemake.log[0]):
    finetune(
        snakemake.wildcards.model, {stage: list(snakemake.input[stage]) for stage in snakemake.params.stages},
        Path(snakemake.output.predictions).parent,
        num_classes(snakemake.input.manifest), snakemake.params.finetune,
        pretrained=snakemake.input.get("pretrained"), threads=snakemake.threads,
    )
