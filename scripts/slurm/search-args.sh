# Sourced by the job scripts in this folder: the `afos search` arguments of a job, fresh or resumed.
#
# A job's run folder is the --out (or --resume) it was given, else results/slurm-$SLURM_JOB_ID: the job id
# survives `scontrol requeue` and a pre-emption that requeues. When that folder already holds a run, the
# job was requeued or resubmitted after a stop, and the search resumes it: the options that --resume lets
# change are passed on, the others are already in the run's stored config (from the first start).
#
#   search_args CONFIG "$@"    # sets SEARCH_ARGS

_RESUMABLE='generations|max-evals|time-limit|device|data-dir|executor|workers|workers-per-gpu|address|max-retries|run-timeout'

search_args() {
    local config=$1 run_dir="" given=0 previous=""
    shift
    for arg in "$@"; do
        case $previous in --out | --resume) run_dir=$arg given=1 ;; esac
        case $arg in --out=* | --resume=*) run_dir=${arg#*=} given=1 ;; esac
        previous=$arg
    done
    if ((!given)) && [[ -n ${SLURM_JOB_ID:-} ]]; then
        run_dir=results/slurm-$SLURM_JOB_ID
    fi
    if [[ -z $run_dir || ! -f $run_dir/afos.db ]]; then
        SEARCH_ARGS=(--config "$config" "$@")
        if ((!given)) && [[ -n $run_dir ]]; then
            SEARCH_ARGS+=(--out "$run_dir")
        fi
        return 0
    fi
    echo "afos-slurm: $run_dir holds a run already (a requeued or resubmitted job): resuming it" >&2
    SEARCH_ARGS=(--resume "$run_dir")
    while (($#)); do
        if [[ $1 =~ ^--($_RESUMABLE)$ ]]; then
            SEARCH_ARGS+=("$1" "${2:-}")
            shift $(($# > 1 ? 2 : 1))
        elif [[ $1 =~ ^--($_RESUMABLE)= || $1 == --quiet ]]; then
            SEARCH_ARGS+=("$1")
            shift
        elif [[ $1 == --learnable-constants || $1 == --*=* ]]; then
            shift
        else  # an option that is part of the stored run, and its value
            shift $(($# > 1 ? 2 : 1))
        fi
    done
}
