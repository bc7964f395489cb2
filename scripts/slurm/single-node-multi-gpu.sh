#!/bin/bash
# afos search on one machine with several GPUs and WORKERS_PER_GPU training processes on each (default 2):
# small models such as ResNet-20 leave a GPU partly idle, and a second process fills the gaps. No Ray needed.
#
#   bash scripts/slurm/single-node-multi-gpu.sh                   # on a workstation
#   sbatch scripts/slurm/single-node-multi-gpu.sh --generations 5 # on Slurm, with the #SBATCH lines below
#   CONFIG=fashion-mnist sbatch scripts/slurm/single-node-multi-gpu.sh
#
# Run from the repository root. Arguments go to `afos search`. The dataset must be on disk (AFOS_DATA_DIR
# or --data-dir) when the machine cannot download it. Without GPUs the workers are CPU processes. A job that
# is requeued, or resubmitted with the same --out or with --resume, resumes its run (search-args.sh).
#SBATCH --job-name=afos-1node
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --gpus=4
#SBATCH --cpus-per-task=16
#SBATCH --time=24:00:00
#SBATCH --output=afos-1node-%j.log

set -euo pipefail

cd "${SLURM_SUBMIT_DIR:-.}"
# shellcheck disable=SC1091
source "${VENV:-.venv}/bin/activate"
# shellcheck source=scripts/slurm/search-args.sh
source scripts/slurm/search-args.sh

search_args "${CONFIG:-cifar10-resnet20}" "$@"
afos search --executor process --workers-per-gpu "${WORKERS_PER_GPU:-2}" "${SEARCH_ARGS[@]}"
