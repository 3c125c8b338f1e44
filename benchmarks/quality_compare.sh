#!/usr/bin/env bash
# Sample quality of gan_jax and of a PyTorch peer at equal wall clock; prints one table.
#
#   bash benchmarks/quality_compare.sh                         # 15 minutes, scored at 5, 10, 15
#   MINUTES=0.5 MARKS=0.2 bash benchmarks/quality_compare.sh   # a quick try of the script
#   CONFIG=experiments/wgan_gp.py:cpu bash benchmarks/quality_compare.sh   # another candidate
#   PEER=mimicry MINUTES=30 MARKS="10 20" bash benchmarks/quality_compare.sh   # ResNet family
#
# PEER picks the pair: dcgan (the default), gan_jax's default `experiments/sngan.py:cpu`
# against benchmarks/pytorch_dcgan28.py (the TensorFlow tutorial's DCGAN, labelled pytorch);
# mimicry, `experiments/resnet_sngan.py` (full width, batch 64: Mimicry's networks) against
# benchmarks/mimicry_sngan.py's training (Mimicry's SNGAN-32, labelled mimicry). It trains
# `python -m gan_jax.main --config $CONFIG` (the experiment as it is, with only a time budget
# and timed checkpoints added) and then the peer, one after the other, never side by side,
# for MINUTES of wall clock each (gan_jax's start-up and compilation count, as the peer's
# reading of the data does). What each has made at each of MARKS minutes is kept: gan_jax's
# checkpoints (config.checkpoint_every_minutes), the peer's --snapshot_minutes sample files.
# Then every one of them and both ends are scored on NUM_SAMPLES samples by `python -m
# gan_jax.evaluate`, one JSON line per (framework, minutes) is appended to RESULTS (the
# metrics; the steps there; each run's steps, images/s and `uptime` before and after it; the
# CPU, cores and versions), and benchmarks/quality.py prints the markdown table of this
# comparison.
#
# Fair means alone: PyTorch's CPU throughput collapses beside other jobs far more than XLA's.
# Before each run the script waits up to SETTLE_SECONDS for the 1-minute load average to fall
# to LOAD_LIMIT (the previous run's own load takes a minute or two to fade from it); if it
# does not, it warns loudly, runs anyway and the table marks the run NOT QUIET.
#
# Environment (defaults in brackets):
#   MINUTES         wall-clock budget of each run [15]
#   MARKS           earlier minutes to score as well, multiples of the first ["5 10"]
#   PEER            dcgan or mimicry [dcgan]
#   CONFIG          gan_jax's config [dcgan: experiments/sngan.py:cpu; mimicry:
#                   experiments/resnet_sngan.py]
#   NUM_SAMPLES     samples scored at each mark [10000]
#   LOAD_LIMIT      the highest 1-minute load average of a quiet machine [0.5]
#   SETTLE_SECONDS  how long to wait for it before each run [180]
#   OUT             where the runs go; must not exist [runs/quality_compare/<date-time>]
#   RESULTS         the .jsonl to append to [benchmarks/results/<date>-quality.jsonl]
#   GAN_JAX_ARGS    more arguments for gan_jax's training, e.g. "--config.g_ema_decay=0" [none]
#   PEER_ARGS       more arguments for the peer's training, e.g. "--ngf 16 --ndf 16" for a
#                   quick try of the script with PEER=mimicry [none]
#   PYTHON, TORCH_VENV, TORCH_WHEEL, TORCH_WHEEL_DIR, TORCH_THREADS, MIMICRY_PACKAGE
#                   as for compare.sh
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
TORCH_VENV=${TORCH_VENV:-$HOME/.venvs/gan_jax_torch}
TORCH_WHEEL_DIR=${TORCH_WHEEL_DIR:-/opt/wheels}
MINUTES=${MINUTES:-15}
MARKS=${MARKS-5 10}  # Set but empty: the ends only.
PEER=${PEER:-dcgan}
NUM_SAMPLES=${NUM_SAMPLES:-10000}
LOAD_LIMIT=${LOAD_LIMIT:-0.5}
SETTLE_SECONDS=${SETTLE_SECONDS:-180}
OUT=${OUT:-runs/quality_compare/$(date +%Y-%m-%d-%H%M%S)}
RESULTS=${RESULTS:-benchmarks/results/$(date +%Y-%m-%d)-quality.jsonl}

source benchmarks/common.sh

# The peer's name in the results (its framework column) and its training command's start.
case $PEER in
  dcgan) CONFIG=${CONFIG:-experiments/sngan.py:cpu}; peer=pytorch
         peer_command=(benchmarks/pytorch_dcgan28.py) ;;
  mimicry) CONFIG=${CONFIG:-experiments/resnet_sngan.py}; peer=mimicry
           peer_command=(benchmarks/mimicry_sngan.py train) ;;
  *) die "unknown PEER '$PEER' (dcgan or mimicry)" ;;
esac

# The marks, sorted, below MINUTES and multiples of the first: gan_jax checkpoints every
# first-mark minutes, so it has a checkpoint at each of them.
marks=$("$PYTHON" - "$MINUTES" $MARKS <<'EOF'
import sys
try:
  minutes, *marks = map(float, sys.argv[1:])
except ValueError:
  sys.exit('quality_compare.sh: MINUTES and MARKS must be numbers of minutes')
marks = sorted(set(marks))
if not minutes > 0 or any(not 0 < mark < minutes for mark in marks):
  sys.exit(f'quality_compare.sh: MARKS must lie between 0 and MINUTES={minutes:g}')
if any(abs(mark / marks[0] - round(mark / marks[0])) > 1e-6 for mark in marks):
  sys.exit('quality_compare.sh: MARKS must be multiples of the first (gan_jax checkpoints '
           'every so many minutes)')
print(' '.join(f'{mark:g}' for mark in marks))
EOF
)
period=${marks%% *}
period=${period:-0}
# Every timed checkpoint and the last one are kept.
keep=$(awk -v m="$MINUTES" -v p="$period" 'BEGIN { print (p > 0 ? int(m / p) : 0) + 2 }')

[[ -e $OUT ]] && die "$OUT exists; set OUT to a new folder"
mkdir -p "$OUT" "$(dirname "$RESULTS")"
find_jax_device
ensure_torch_venv
if [[ $PEER == mimicry ]]; then ensure_mimicry; fi
write_meta "$RESULTS" torch_version="$torch_version" config="$CONFIG" peer="$PEER" out="$OUT" \
  gan_jax_args="${GAN_JAX_ARGS:-}" peer_args="${PEER_ARGS:-}" \
  budget_minutes:="$MINUTES" marks:="[${marks// /,}]" load_limit:="$LOAD_LIMIT"

load_1min() { cut -d' ' -f1 /proc/loadavg; }
above_limit() {
  awk -v load="$(load_1min)" -v limit="$LOAD_LIMIT" 'BEGIN { exit !(load > limit) }'
}

# wait_until_quiet NAME: waits up to SETTLE_SECONDS for a quiet machine; warns if it is not.
wait_until_quiet() {
  local waited=0
  while above_limit && ((waited < SETTLE_SECONDS)); do
    ((waited == 0)) && echo "quality_compare.sh: waiting up to ${SETTLE_SECONDS}s for the" \
      "1-minute load ($(load_1min)) to fall to $LOAD_LIMIT" >&2
    sleep 5
    waited=$((waited + 5))
  done
  if above_limit; then
    cat >&2 <<EOF
################################################################################
quality_compare.sh: WARNING: THE MACHINE IS NOT QUIET before the $1 run:
  $(uptime)
  busiest processes (%CPU since each started, command):
$(ps -eo pcpu=,args= --sort=-pcpu | head -n 3 | cut -c1-100 | sed 's/^/    /')
  Other jobs share the CPU: PyTorch's throughput collapses under contention far more
  than XLA's, so this comparison is not fair. Running anyway; stop them and rerun.
################################################################################
EOF
  fi
}

# train NAME COMMAND...: runs one training alone; its stdout goes to $OUT/NAME.out (PyTorch's
# JSON line), its log to $OUT/NAME.log, and `uptime` before and after it to $OUT/NAME.uptime.
train() {
  local name=$1 status=0
  shift
  wait_until_quiet "$name"
  uptime >"$OUT/$name.uptime"
  echo "quality_compare.sh: training $name for $MINUTES min (load $(load_1min))" >&2
  "$@" >"$OUT/$name.out" 2>"$OUT/$name.log" || status=$?
  uptime >>"$OUT/$name.uptime"
  if ((status)); then
    tail -n 5 "$OUT/$name.log" | sed 's/^/    /' >&2
    die "the $name run failed (exit $status); its log: $OUT/$name.log"
  fi
}

torch_args=(--device "$torch_device")
if [[ -n ${TORCH_THREADS:-} ]]; then torch_args+=(--threads "$TORCH_THREADS"); fi
read -ra peer_args <<<"${PEER_ARGS:-}"
read -ra gan_jax_args <<<"${GAN_JAX_ARGS:-}"
train gan_jax "$PYTHON" -m gan_jax.main --config "$CONFIG" --workdir "$OUT/gan_jax" \
  --config.train_minutes="$MINUTES" --config.checkpoint_every_minutes="$period" \
  --config.checkpoint_every=1000000000 --config.keep_checkpoints="$keep" "${gan_jax_args[@]}"
train "$peer" "$torch_python" "${peer_command[@]}" --minutes "$MINUTES" \
  --snapshot_minutes "${marks// /,}" --output "$OUT/$peer/samples.npy" \
  --num_samples "$NUM_SAMPLES" "${torch_args[@]}" "${peer_args[@]}"

for name in gan_jax "$peer"; do
  "$PYTHON" benchmarks/quality.py score "$RESULTS" "$OUT" "$name" "$MINUTES" $marks \
    --num_samples "$NUM_SAMPLES" || die "scoring the $name run failed"
done

echo "quality_compare.sh: results in $RESULTS, runs in $OUT" >&2
"$PYTHON" benchmarks/quality.py table "$RESULTS"
