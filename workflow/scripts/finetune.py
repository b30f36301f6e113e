"""Rule finetune: one dataset's shards (+ signbert.pt) -> one model's checkpoint and predictions.h5
(signpipe.finetune.finetune)."""

from pathlib import Path

from signpipe.finetune import finetune, num_classes
from signpipe.logs import log_to

with log_to(snakemake.log[0]):
    finetune(
        snakemake.wildcards.model, snakemake.input.shards, Path(snakemake.output.predictions).parent,
        num_classes(snakemake.input.manifest), snakemake.params.finetune,
        pretrained=snakemake.input.get("pretrained"),
    )
