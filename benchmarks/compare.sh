#!/usr/bin/env bash
# Times gan_jax against a PyTorch peer at several batch sizes; prints one table.
#
#   bash benchmarks/compare.sh [BATCH_SIZE ...]
#   STEPS=50 VARIANTS="eager compile" bash benchmarks/compare.sh 64 256
#   PEER=mimicry bash benchmarks/compare.sh     # the ResNet family against Mimicry's SNGAN
#
# PEER picks the pair: dcgan (the default), `experiments/dcgan64.py` against
# benchmarks/pytorch_dcgan.py (pytorch/examples' DCGAN); mimicry, `experiments/resnet_sngan.py`
# against benchmarks/mimicry_sngan.py (Mimicry's SNGAN-32 networks and training iteration, 5
# D updates per G update, its docstring says how the two steps differ). For each batch size it
# runs `python -m gan_jax.benchmark --config $CONFIG` with --synthetic (the step alone),
# without (the real input pipeline) and, where PyTorch's bf16 runs, --synthetic with
# --config.model.compute_dtype=bfloat16 (JAX_INPUTS), then the peer for each PyTorch variant.
# Every run's JSON line is appended to benchmarks/results/<date>-<host or device>.jsonl with
# the CPU's model, its vector flags and the ISA pin in effect, after a meta line naming the
# peer and the config, and benchmarks/table.py prints the markdown table of this run. A run
# that fails is recorded as failed and the rest go on.
#
# PyTorch lives in its own virtual environment, never in the project's: $TORCH_VENV is
# created on first use with `pip install torch` (or $TORCH_WHEEL; on a CPU machine a local
# CPU wheel in $TORCH_WHEEL_DIR is preferred to PyPI's much larger CUDA build), and with
# PEER=mimicry it gets `pip install --no-deps torch-mimicry==0.1.16` (the networks need torch
# alone; MIMICRY_PACKAGE another requirement or file).
#
# Environment (defaults in brackets):
#   PYTHON          the project's Python, with gan_jax installed [python]
#   TORCH_VENV      [$HOME/.venvs/gan_jax_torch]
#   TORCH_WHEEL     a torch wheel file to install instead of `pip install torch`
#   TORCH_WHEEL_DIR where to look for a CPU torch wheel on CPU machines [/opt/wheels]
#   PEER            dcgan or mimicry [dcgan]
#   BATCH_SIZES     if no arguments [dcgan: CPU "16 64", GPU "64 256 1024"; mimicry: 64]
#   STEPS, WARMUP   timed and untimed steps per run [20, 2]
#   VARIANTS        PyTorch variants, "" for none [dcgan: eager channels_last bf16
#                   bf16_channels_last compile fastest; mimicry: eager bf16 (channels_last
#                   also runs); on a CPU without bf16 instructions the bf16 ones and fastest
#                   are left out: emulated bf16 is tens of times slower there]
#   JAX_INPUTS      gan_jax inputs, "" for none: synthetic, real, bf16 (synthetic in
#                   bfloat16) ["synthetic real bf16", bf16 left out as PyTorch's is]
#   CONFIG          gan_jax config [dcgan: experiments/dcgan64.py; mimicry:
#                   experiments/resnet_sngan.py]
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
PEER=${PEER:-dcgan}
RUN_TIMEOUT=${RUN_TIMEOUT:-0}
ISA=${ISA:-native}

source benchmarks/common.sh

case $PEER in
  dcgan) CONFIG=${CONFIG:-experiments/dcgan64.py}; peer_script=benchmarks/pytorch_dcgan.py
         peer_args=() ;;
  mimicry) CONFIG=${CONFIG:-experiments/resnet_sngan.py}
           peer_script=benchmarks/mimicry_sngan.py; peer_args=(speed) ;;
  *) die "unknown PEER '$PEER' (dcgan or mimicry)" ;;
esac

pin_isa

# Which accelerator JAX sees decides the device and the default batch sizes.
find_jax_device
if [[ $PEER == mimicry ]]; then
  default_batches=64
elif [[ $torch_device == cuda ]]; then
  default_batches="64 256 1024"
else
  default_batches="16 64"
fi
if (($#)); then batch_sizes="$*"; else batch_sizes=${BATCH_SIZES:-$default_batches}; fi
# bf16 where the device computes it: a GPU, or a CPU with bf16 instructions and no AVX2 pin.
bf16=true
if [[ $torch_device == cpu ]] && { [[ $ISA == avx2 ]] ||
    ! grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; }; then
  bf16=false
fi
skipped_bf16=false
if [[ -z ${VARIANTS+set} ]]; then  # Set but empty: no PyTorch runs.
  case $PEER-$bf16 in
    dcgan-true) VARIANTS="eager channels_last bf16 bf16_channels_last compile fastest" ;;
    dcgan-false) VARIANTS="eager channels_last compile"; skipped_bf16=true ;;
    mimicry-true) VARIANTS="eager bf16" ;;
    mimicry-false) VARIANTS="eager"; skipped_bf16=true ;;
  esac
fi
if [[ -z ${JAX_INPUTS+set} ]]; then  # Set but empty: no gan_jax runs.
  JAX_INPUTS="synthetic real"
  if [[ $bf16 == true ]]; then JAX_INPUTS+=" bf16"; else skipped_bf16=true; fi
fi
if [[ $skipped_bf16 == true ]]; then
  echo "compare.sh: no bf16 instructions (on this CPU, or with ISA=$ISA); skipping the bf16" \
    "runs (set VARIANTS and JAX_INPUTS to run them)" >&2
fi

# PyTorch in its own virtual environment; Mimicry's networks in it too.
ensure_torch_venv
if [[ $PEER == mimicry ]]; then ensure_mimicry; fi

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
  warmup:="$WARMUP" peer="$PEER" config="$CONFIG" peer_script="$peer_script"

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
      bf16) run_one gan_jax 'synthetic bf16' "$batch" "$PYTHON" -m gan_jax.benchmark \
          --config "$CONFIG" --config.batch_size="$batch" --synthetic \
          --config.model.compute_dtype=bfloat16 --steps "$STEPS" --warmup "$WARMUP" ;;
      *) die "unknown JAX_INPUTS entry '$input' (synthetic, real or bf16)" ;;
    esac
  done
  for variant in $VARIANTS; do
    run_one pytorch "$variant" "$batch" "$torch_python" "$peer_script" "${peer_args[@]}" \
      --variant "$variant" --batch_size "$batch" --steps "$STEPS" --warmup "$WARMUP" \
      --device "$torch_device" "${torch_args[@]}"
  done
done

echo "compare.sh: results in $RESULTS" >&2
"$PYTHON" benchmarks/table.py "$RESULTS"
