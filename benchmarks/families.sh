#!/usr/bin/env bash
# Times every model family's :cpu preset with gan_jax.benchmark; prints one table, so that a
# regression in any family's step shows.
#
#   bash benchmarks/families.sh
#   FAMILIES="ns_gan progan" STEPS=50 bash benchmarks/families.sh
#   ISA=avx2 bash benchmarks/families.sh
#   BASELINE=benchmarks/results/OLD-families.jsonl bash benchmarks/families.sh
#   python benchmarks/table.py families NEW.jsonl --baseline OLD.jsonl  # compare two runs
#
# The families are the experiments/*.py files whose get_config accepts 'cpu' (each is loaded
# and asked; one that answers "Unknown config argument" has no :cpu preset and is left out:
# dcgan64, toy_grid and toy_ring today; the toy configs' --synthetic batch would be uniform
# points in [-1, 1]^2 with random mode labels). For each, in name order, it runs
# `python -m gan_jax.benchmark --config experiments/X.py:cpu --synthetic`: the compiled
# training step alone on one device-resident random batch (random labels in the data set's
# classes, which the conditional families, cond_sngan and biggan, take as real labels; G draws
# its own classes as in training). Each run's JSON line is appended to
# benchmarks/results/<date>-<host>-families.jsonl, after one meta line, with the CPU's model,
# its vector flags and the ISA pin in effect; a run that fails is recorded as failed and the
# rest go on. benchmarks/table.py then prints one row per config: batch, n_critic, ms/step,
# images/s (batch * n_critic real images per step) and compile seconds, and with BASELINE the
# ratio of each to an earlier run's.
#
# What a row times is one training step as gan_jax.benchmark builds it, which is not always
# the average step of a run; the meta line records a note for each such family and the table
# prints it:
#   - progan.py:cpu (a growing model) is timed at its last stage, the whole 32x32 network with
#     the fade-in's blend, as training runs from the 32x32 fade-in on; the 4x4-16x16 stages
#     before it are cheaper.
#   - stylegan2.py:cpu is timed without its lazy regularisers: training adds R1 every 16th
#     step and the path-length penalty every 4th.
#
# Environment (defaults in brackets):
#   PYTHON          the project's Python, with gan_jax installed [python]
#   FAMILIES        experiment names to run, with or without experiments/ and .py (an unknown
#                   one, or one without a :cpu preset, is an error) [every family with :cpu]
#   STEPS, WARMUP   timed and untimed steps per run [20, 2]
#   BENCHMARK_ARGS  more flags for every gan_jax.benchmark run, recorded in the meta line
#                   (e.g. "--config.model.conv_implementation=xla") [none]
#   RUN_TIMEOUT     seconds before one run is stopped and recorded as failed [0: none]
#   ISA             avx2 pins XLA to AVX2 (XLA_FLAGS=--xla_cpu_max_isa=AVX2), so that a CPU
#                   with AVX-512 also gives the AVX2 table; benchmarks/common.sh's pin_isa, as
#                   compare.sh's, which also sets PyTorch's caps (unused here, recorded in
#                   isa_env) [native: whatever the CPU has]
#   BASELINE        an earlier families .jsonl to compare with (its last run) [none]
#   RESULTS         the .jsonl to append to [benchmarks/results/<date>-<host>-families.jsonl]
set -uo pipefail  # No -e: a failed run is recorded, not fatal.

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
FAMILIES=${FAMILIES:-}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-2}
BENCHMARK_ARGS=${BENCHMARK_ARGS:-}
RUN_TIMEOUT=${RUN_TIMEOUT:-0}
ISA=${ISA:-native}
BASELINE=${BASELINE:-}

source benchmarks/common.sh

pin_isa
if [[ -n $BASELINE && ! -r $BASELINE ]]; then die "cannot read BASELINE $BASELINE"; fi
read -ra benchmark_args <<<"$BENCHMARK_ARGS"

# The device (for write_meta), the notes, then one "CONFIG BATCH" line per family to run.
plan=$("$PYTHON" - "$FAMILIES" <<'EOF'
import glob, importlib.util, json, os, sys
import jax
from gan_jax import growth, input_pipeline
from gan_jax.errors import UserError

def load(path):
  spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config('cpu')

names = sorted(os.path.basename(p)[:-3] for p in glob.glob('experiments/*.py'))
every = lambda k: 'every step' if k == 1 else f'every {k}th step'
batches, notes, without = {}, {}, []
for name in names:
  try:
    config = load(f'experiments/{name}.py')
  except UserError as e:
    if str(e).startswith('Unknown config argument'):
      without.append(name)
    else:
      batches[name] = 0  # a broken preset: its run fails and is recorded
    continue
  except Exception:
    batches[name] = 0
    continue
  batches[name] = config.batch_size
  if growth.is_growing(config):
    side = input_pipeline.data_shape(config)[0]
    notes[name] = (f"timed at its last stage, {side}x{side}: the whole network with the "
                   "fade-in's blend; training's earlier stages are cheaper")
  lazy = []
  if config.r1_gamma > 0 and config.r1_every > 1:
    lazy.append(f'R1 {every(config.r1_every)}')
  if config.pl_weight > 0:
    lazy.append(f'the path-length penalty {every(config.pl_every)}')
  if lazy:
    notes[name] = 'timed without its lazy regularisers: training adds ' + ' and '.join(lazy)

wanted = [w.removeprefix('experiments/').removesuffix('.py') for w in sys.argv[1].split()]
for name in wanted:
  if name in without:
    sys.exit(f"families.sh: {name} has no :cpu preset (those with one: {' '.join(batches)})")
  if name not in batches:
    sys.exit(f"families.sh: unknown family '{name}' (those with a :cpu preset: "
             f"{' '.join(batches)})")
run = list(dict.fromkeys(wanted)) or list(batches)
print(jax.devices()[0].device_kind)
print(json.dumps({f'experiments/{name}.py:cpu': notes[name] for name in run if name in notes}))
for name in run:
  print(f'experiments/{name}.py:cpu', batches[name])
EOF
) || exit 1
device_kind=$(sed -n 1p <<<"$plan")
notes=$(sed -n 2p <<<"$plan")

# One results file per day and host; each run starts with a meta line.
tag=$(hostname -s 2>/dev/null || hostname)
tag=$(tr -c 'A-Za-z0-9._\n-' '-' <<<"$tag")
RESULTS=${RESULTS:-benchmarks/results/$(date +%Y-%m-%d)-$tag-families.jsonl}
mkdir -p "$(dirname "$RESULTS")"
write_meta "$RESULTS" kind=families isa="$ISA" steps:="$STEPS" warmup:="$WARMUP" \
  benchmark_args="$BENCHMARK_ARGS" notes:="$notes"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mapfile -t runs < <(sed -n '3,$p' <<<"$plan")
for run in "${runs[@]}"; do
  read -r config batch <<<"$run"
  run_one gan_jax "$config" "$batch" "$PYTHON" -m gan_jax.benchmark --config "$config" \
    --synthetic --steps "$STEPS" --warmup "$WARMUP" "${benchmark_args[@]}"
done

echo "families.sh: results in $RESULTS" >&2
table_args=()
if [[ -n $BASELINE ]]; then table_args+=(--baseline "$BASELINE"); fi
"$PYTHON" benchmarks/table.py families "$RESULTS" "${table_args[@]}"
