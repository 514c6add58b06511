#!/usr/bin/env bash
# Start or resume one heroforge run, and turn the cloud's preemption notice into the SIGTERM
# that makes the trainer finish its step and checkpoint. heroforge-spot.yaml runs this on every
# start and every recovery of the managed job; it works anywhere (the tests run it locally).
#
# Environment:
#   HEROFORGE_OUT       folder that holds the run folder (on a bucket mount in the cloud)
#   HEROFORGE_DATA      the training archive (used by the first start; a resume reads run.json)
#   PRESET, KIMG        the first start's preset; the target kimg (a resume trains on to it)
#   CHECKPOINT_MINUTES  train.checkpoint_minutes of the first start
#   SETTINGS            more SECTION.KEY=VALUE settings for the first start, space-separated
#   SKYPILOT_NUM_GPUS_PER_NODE  GPUs to train on (SkyPilot sets it; 1 elsewhere)
#   SKYPILOT_CLUSTER_INFO       JSON with the cloud's name (SkyPilot sets it): which notice to watch
set -uo pipefail
out=${HEROFORGE_OUT:?set HEROFORGE_OUT to the folder that holds the run folder}
gpus=${SKYPILOT_NUM_GPUS_PER_NODE:-1}

# The newest folder with run.json is the run (a start killed before writing it left none).
run_dir=""
for d in "$out"/*/; do [ -f "$d/run.json" ] && run_dir=${d%/}; done
if [ -n "$run_dir" ]; then
    args=(train --resume "$run_dir" --kimg "${KIMG:?}" --gpus "$gpus")
else
    mkdir -p "$out" || exit 74
    args=(train --data "${HEROFORGE_DATA:?}" --preset "${PRESET:?}" --outdir "$out"
          --kimg "${KIMG:?}" --gpus "$gpus" --set "train.checkpoint_minutes=${CHECKPOINT_MINUTES:?}")
    read -ra settings <<< "${SETTINGS:-}"
    for s in "${settings[@]}"; do args+=(--set "$s"); done
fi

# A preemption is announced by the metadata server before the machine goes: GCP sets
# instance/preempted to TRUE about 30 s before, AWS answers spot/instance-action 2 minutes
# before. Neither sends a signal at the notice (AWS's shutdown comes at the end of the 2
# minutes), so without this watcher the stop checkpoint would start too late or never.
notice_given() {
    case ${SKYPILOT_CLUSTER_INFO:-} in
    *'"cloud": "GCP"'*)
        [ "$(curl -sf -m 2 -H 'Metadata-Flavor: Google' \
            http://metadata.google.internal/computeMetadata/v1/instance/preempted)" = TRUE ] ;;
    *'"cloud": "AWS"'*)
        local token
        token=$(curl -sf -m 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \
            http://169.254.169.254/latest/api/token) &&
            curl -sf -m 2 -o /dev/null -H "X-aws-ec2-metadata-token: $token" \
                http://169.254.169.254/latest/meta-data/spot/instance-action ;;
    *) return 1 ;;
    esac
}

heroforge "${args[@]}" &
trainer=$!
(
    while kill -0 "$trainer" 2>/dev/null; do
        if notice_given; then
            echo "spot-train: preemption notice: the trainer checkpoints and stops" >&2
            kill -TERM "$trainer"
            exit 0
        fi
        sleep 2
    done
) &
watcher=$!
# `sky jobs cancel` and the machine's shutdown signal this script: the trainer checkpoints too.
trap 'kill -TERM "$trainer" 2>/dev/null' TERM INT
wait "$trainer"; code=$?
while kill -0 "$trainer" 2>/dev/null; do wait "$trainer"; code=$?; done  # still checkpointing
kill "$watcher" 2>/dev/null
# 75: stopped with a checkpoint; the job's recover_on_exit_codes starts it again.
exit "$code"
