#!/usr/bin/env bash
# Run by Snakemake once after it creates the mmpose env (see mmpose.yaml for why each line is here).
set -euo pipefail
pip install --no-build-isolation chumpy==0.70
pip install --no-build-isolation --no-binary xtcocotools xtcocotools==1.14.3
pip install --no-deps mmpose==1.3.2
python -c "import mmcv.ops, mmdet, mmpose.apis"
