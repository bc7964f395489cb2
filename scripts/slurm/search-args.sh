# Sourced by the scripts in this folder: the `afos search` arguments of a job, fresh or resumed.
#
# A job's run folder is the --out (or --resume) it was given, else results/slurm-$SLURM_JOB_ID (the job id
# survives `scontrol requeue` and pre-emption with requeue). If that folder already holds a run, the job
# was requeued or resubmitted after a stop: the search resumes it, keeping the options that --resume lets
# change and dropping those fixed in the run's stored config (they were given to the first start).
# Sets SEARCH_ARGS; $1 is the config file, the rest the job's own arguments.

search_args() {
    local config=$1 run_dir="" arg
    shift
    local args=("$@") i
    for ((i = 0; i < ${#args[@]}; i++)); do
        arg=${args[i]}
        case $arg in
            --out | --resume) run_dir=${args[i + 1]:-} ;;
            --out=* | --resume=*) run_dir=${arg#*=} ;;
        esac
    done
    if [[ -z $run_dir && -n ${SLURM_JOB_ID:-} ]]; then
        run_dir=results/slurm-$SLURM_JOB_ID
    fi
    if [[ -z $run_dir || ! -f $run_dir/afos.db ]]; then
        SEARCH_ARGS=(--config "$config" "$@")
        if [[ -n $run_dir ]] && ! printf '%s\n' "$@" | grep -qE '^--(out|resume)(=|$)'; then
            SEARCH_ARGS+=(--out "$run_dir")
        fi
        return
    fi
    echo "afos-slurm: $run_dir holds a run already (requeued or resubmitted job): resuming it" >&2
    SEARCH_ARGS=(--resume "$run_dir")
    while (($#)); do
        case $1 in
            --generations | --max-evals | --time-limit | --device | --data-dir | --executor | --workers | \
                --workers-per-gpu | --address | --max-retries | --run-timeout)
                SEARCH_ARGS+=("$1" "${2:-}")
                shift 2 || shift
                ;;
            --generations=* | --max-evals=* | --time-limit=* | --device=* | --data-dir=* | --executor=* | \
                --workers=* | --workers-per-gpu=* | --address=* | --max-retries=* | --run-timeout=* | --quiet)
                SEARCH_ARGS+=("$1")
                shift
                ;;
            --learnable-constants | --*=*) shift ;;
            *) shift 2 || shift ;;  # an option fixed in the stored config, and its value
        esac
    done
}
