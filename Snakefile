# signpipe: video -> frames -> keypoints -> hands -> SignBERT -> fine-tuning -> fusion -> tables.
# This file is the table of contents; each stage lives in workflow/rules/<stage>.smk, its
# script in workflow/scripts/ and its logic in the `signpipe` library.

import os
import sys

from snakemake.utils import min_version

min_version("9.27")  # 9.15 oversubscribed cores when one job was ready (tests/test_scheduler.py)


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


# The workflow and its jobs import the signpipe library from this checkout, also inside
# --use-conda envs and on cluster nodes, where it is not pip-installed.
sys.path.insert(0, workflow.basedir)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))
)


include: "workflow/rules/common.smk"


wildcard_constraints:
    ds="|".join(DATASETS),
    shard=r"\d+",
    model="|".join(config["finetune"]["models"]),
    name="|".join(config["predict"]) or "(?!)",


include: "workflow/rules/data.smk"
include: "workflow/rules/pose.smk"
include: "workflow/rules/hands.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/fusion.smk"
include: "workflow/rules/sheets.smk"
include: "workflow/rules/predict.smk"


rule all:
    input:
        all_outputs(),
    default_target: True


# `snakemake --cores all upto_<stage>`: every dataset up to that stage (README: "Running up to a stage").
# The job rules keep the stage names, so `--forcerun pose` redoes a stage.
rule upto_decode:
    input:
        stage_targets("decode"),


rule upto_pose:
    input:
        stage_targets("pose"),


rule upto_hands:
    input:
        stage_targets("hands"),


rule upto_pretrain:
    input:
        stage_targets("pretrain"),


rule upto_finetune:
    input:
        stage_targets("finetune"),
