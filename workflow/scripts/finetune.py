"""Rule finetune: one dataset's shards per stage (+ signbert.pt) -> one model's checkpoints and predictions.h5
(signpipe.finetune.finetune; one torchrun rank per GPU the job holds)."""

from pathlib import Path

from signpipe.finetune import num_classes
from signpipe.launch import on_ranks
from signpipe.logs import log_to

with log_to(snakemake.log[0]):
    on_ranks(
        "signpipe.finetune:finetune", snakemake.resources.gpu,
        snakemake.wildcards.model, {stage: list(snakemake.input[stage]) for stage in snakemake.params.stages},
        Path(snakemake.output.predictions).parent,
        num_classes(snakemake.input.manifest), snakemake.params.finetune,
        pretrained=snakemake.input.get("pretrained"), threads=snakemake.threads,
    )
