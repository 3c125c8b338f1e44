#!/usr/bin/env bash
# Times gan_jax against the PyTorch DCGAN peer at several batch sizes; prints one table.
#
#   bash benchmarks/compare.sh [BATCH_SIZE ...]
#   STEPS=50 VARIANTS="eager compile" bash benchmarks/compare.sh 64 256
#
# For each batch size it runs `python -m gan_jax.benchmark --config experiments/dcgan64.py`
# with --synthetic (the step alone) and without (the real input pipeline), then
# benchmarks/pytorch_dcgan.py for each PyTorch variant. Every run's JSON line is appended to
# benchmarks/results/<date>-<host or device>.jsonl with the CPU's model, its vector flags and
# the ISA pin in effect, and benchmarks/table.py prints the markdown table of this run. A run
# that fails is recorded as failed and the rest go on.
#
# PyTorch lives in its own virtual environment, never in the project's: $TORCH_VENV is
# created on first use with `pip install torch` (or $TORCH_WHEEL; on a CPU machine a local
# CPU wheel in $TORCH_WHEEL_DIR is preferred to PyPI's much larger CUDA build).
#
# Environment (defaults in brackets):
#   PYTHON          the project's Python, with gan_jax installed [python]
#   TORCH_VENV      [$HOME/.venvs/gan_jax_torch]
#   TORCH_WHEEL     a torch wheel file to install instead of `pip install torch`
#   TORCH_WHEEL_DIR where to look for a CPU torch wheel on CPU machines [/opt/wheels]
#   BATCH_SIZES     if no arguments [CPU: "16 64"; GPU: "64 256 1024"]
#   STEPS, WARMUP   timed and untimed steps per run [20, 2]
#   VARIANTS        PyTorch variants, "" for none [eager channels_last bf16 compile
#                   fastest; on a CPU without bf16 instructions bf16 and fastest are left
#                   out: emulated bf16 is tens of times slower there]
#   JAX_INPUTS      gan_jax inputs, "" for none ["synthetic real"]
#   CONFIG          gan_jax config [experiments/dcgan64.py]
#   TORCH_THREADS   passed as --threads to the PyTorch script [torch's default]
#   RUN_TIMEOUT     seconds before one run is stopped and recorded as failed [0: none]
#   ISA             avx2 pins both frameworks to AVX2, so that a CPU with AVX-512 also gives
#                   the AVX2 table (XLA_FLAGS=--xla_cpu_max_isa=AVX2, ATEN_CPU_CAPABILITY=avx2,
#                   ONEDNN_MAX_CPU_ISA=AVX2; bf16 and fastest are left out as on an AVX2 CPU)
#                   [native: whatever the CPU has]
#   RESULTS         the .jsonl to append to [benchmarks/results/<date>-<host or device>.jsonl]
set -uo pipefail  # No -e: a failed run is recorded, not fatal.

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
TORCH_VENV=${TORCH_VENV:-$HOME/.venvs/gan_jax_torch}
TORCH_WHEEL_DIR=${TORCH_WHEEL_DIR:-/opt/wheels}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-2}
JAX_INPUTS=${JAX_INPUTS-synthetic real}  # Set but empty: no gan_jax runs.
CONFIG=${CONFIG:-experiments/dcgan64.py}
RUN_TIMEOUT=${RUN_TIMEOUT:-0}
ISA=${ISA:-native}

source benchmarks/common.sh

# Capping XLA's code generation and PyTorch's kernel dispatch (ATen's own, and oneDNN's for
# convolutions) stands in for an AVX2 CPU, so one machine measures both ISAs.
case $ISA in
  native) ;;
  avx2) export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_cpu_max_isa=AVX2" \
          ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 ;;
  *) die "unknown ISA '$ISA' (native or avx2)" ;;
esac

# Which accelerator JAX sees decides the device and the default batch sizes.
find_jax_device
if [[ $torch_device == cuda ]]; then default_batches="64 256 1024"; else default_batches="16 64"; fi
if (($#)); then batch_sizes="$*"; else batch_sizes=${BATCH_SIZES:-$default_batches}; fi
if [[ -z ${VARIANTS+set} ]]; then  # Set but empty: no PyTorch runs.
  VARIANTS="eager channels_last bf16 compile fastest"
  if [[ $torch_device == cpu ]] && { [[ $ISA == avx2 ]] ||
      ! grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; }; then
    VARIANTS="eager channels_last compile"
    echo "compare.sh: no bf16 instructions (on this CPU, or with ISA=$ISA); skipping bf16" \
      "and fastest (set VARIANTS to run them)" >&2
  fi
fi

# PyTorch in its own virtual environment.
ensure_torch_venv

# One results file per day and host (or GPU); each run starts with a meta line.
if [[ $torch_device == cuda ]]; then
  tag=$device_kind
else
  tag=$(hostname -s 2>/dev/null || hostname)
fi
tag=$(tr -c 'A-Za-z0-9._\n-' '-' <<<"$tag")
RESULTS=${RESULTS:-benchmarks/results/$(date +%Y-%m-%d)-$tag.jsonl}
mkdir -p "$(dirname "$RESULTS")"
write_meta "$RESULTS" torch_version="$torch_version" isa="$ISA" steps:="$STEPS" \
  warmup:="$WARMUP"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

torch_args=()
if [[ -n ${TORCH_THREADS:-} ]]; then torch_args+=(--threads "$TORCH_THREADS"); fi
for batch in $batch_sizes; do
  for input in $JAX_INPUTS; do
    case $input in
      synthetic) run_one gan_jax synthetic "$batch" "$PYTHON" -m gan_jax.benchmark \
          --config "$CONFIG" --config.batch_size="$batch" --synthetic \
          --steps "$STEPS" --warmup "$WARMUP" ;;
      real) run_one gan_jax 'real input' "$batch" "$PYTHON" -m gan_jax.benchmark \
          --config "$CONFIG" --config.batch_size="$batch" \
          --steps "$STEPS" --warmup "$WARMUP" ;;
      *) die "unknown JAX_INPUTS entry '$input' (synthetic or real)" ;;
    esac
  done
  for variant in $VARIANTS; do
    run_one pytorch "$variant" "$batch" "$torch_python" benchmarks/pytorch_dcgan.py \
      --variant "$variant" --batch_size "$batch" --steps "$STEPS" --warmup "$WARMUP" \
      --device "$torch_device" "${torch_args[@]}"
  done
done

echo "compare.sh: results in $RESULTS" >&2
"$PYTHON" benchmarks/table.py "$RESULTS"
