# What the benchmarks/ scripts share; sourced, not run.
#
# Expects PYTHON (the project's Python), TORCH_VENV, TORCH_WHEEL_DIR and optionally
# TORCH_WHEEL to be set, as the scripts' headers describe (families.sh, which runs no PyTorch,
# only PYTHON); run_one also RESULTS, RUN_TIMEOUT, ISA and a scratch folder $tmp.

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# pin_isa: exports what caps the vector ISA at $ISA, so that one machine measures both ISAs:
# native, nothing (whatever the CPU has); avx2, XLA's code generation
# (XLA_FLAGS=--xla_cpu_max_isa=AVX2, added to any XLA_FLAGS already set) and PyTorch's kernel
# dispatch, ATen's own and oneDNN's for convolutions (ATEN_CPU_CAPABILITY=avx2,
# ONEDNN_MAX_CPU_ISA=AVX2). Dies on any other value. run_one records the pin in every line.
pin_isa() {
  case $ISA in
    native) ;;
    avx2) export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_cpu_max_isa=AVX2" \
            ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 ;;
    *) die "unknown ISA '$ISA' (native or avx2)" ;;
  esac
}

# find_jax_device: sets platform (cpu or gpu), device_kind and torch_device (cpu or cuda) from
# the accelerator JAX sees, so that PyTorch runs on the same kind of device.
find_jax_device() {
  local info
  info=$("$PYTHON" -c 'import jax; d = jax.devices()[0]
print(d.platform, d.device_kind, sep="\n")') ||
    die "cannot import jax with $PYTHON (set PYTHON to the project's Python)"
  platform=$(sed -n 1p <<<"$info")
  device_kind=$(sed -n 2p <<<"$info")
  case $platform in
    gpu) torch_device=cuda ;;
    cpu) torch_device=cpu ;;
    *) die "unsupported JAX platform '$platform' (the PyTorch peer runs on cpu or cuda)" ;;
  esac
}

# ensure_torch_venv: sets torch_python and torch_version, creating $TORCH_VENV on first use
# with `pip install torch` (or $TORCH_WHEEL; on a CPU machine a local CPU wheel in
# $TORCH_WHEEL_DIR is preferred to PyPI's much larger CUDA build). Needs torch_device.
ensure_torch_venv() {
  torch_python=$TORCH_VENV/bin/python
  if ! "$torch_python" -c 'import torch' 2>/dev/null; then
    echo "$(basename "$0"): installing PyTorch into $TORCH_VENV" >&2
    "$PYTHON" -m venv "$TORCH_VENV" || die "cannot create a virtual environment at $TORCH_VENV"
    if [[ -z ${TORCH_WHEEL:-} && $torch_device == cpu ]]; then
      local py_tag
      py_tag=$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
      TORCH_WHEEL=$(ls "$TORCH_WHEEL_DIR"/torch-*+cpu-"$py_tag"-*.whl 2>/dev/null |
        sort -V | tail -n1)
    fi
    # numpy only silences torch's import-time warning.
    "$torch_python" -m pip install --quiet "${TORCH_WHEEL:-torch}" numpy \
      || die "pip could not install ${TORCH_WHEEL:-torch} into $TORCH_VENV"
  fi
  torch_version=$("$torch_python" -c 'import torch; print(torch.__version__)') \
    || die "torch does not import in $TORCH_VENV"
}

# ensure_mimicry: installs torch-mimicry ($MIMICRY_PACKAGE, default the release
# benchmarks/mimicry_sngan.py was checked against) into $TORCH_VENV on first use, with
# --no-deps: its package declares TensorFlow, torchvision, scikit-image and more for its
# metrics, training loop and data sets, but its networks need torch alone, and
# mimicry_sngan.py imports only those. Needs torch_python (ensure_torch_venv).
ensure_mimicry() {
  if ! "$torch_python" -c 'import importlib.util, sys
sys.exit(importlib.util.find_spec("torch_mimicry") is None)' >/dev/null 2>&1; then
    echo "$(basename "$0"): installing ${MIMICRY_PACKAGE:-torch-mimicry==0.1.16} into" \
      "$TORCH_VENV" >&2
    "$torch_python" -m pip install --quiet --no-deps "${MIMICRY_PACKAGE:-torch-mimicry==0.1.16}" \
      || die "pip could not install ${MIMICRY_PACKAGE:-torch-mimicry==0.1.16} into $TORCH_VENV"
  fi
}

# write_meta RESULTS KEY=VALUE... KEY:=JSON...: appends the {"meta": true, ...} line that
# starts a run's results (benchmarks/table.py splits runs there): date, host, device kind (the
# CPU's model where JAX says only 'cpu'), cores, the jax, jaxlib and flax versions, and the
# pairs, KEY=VALUE as a string and KEY:=JSON as a JSON value. Needs device_kind.
write_meta() {
  "$PYTHON" - "$device_kind" "$@" <<'EOF'
import datetime, json, os, socket, sys
import flax, jax, jaxlib
device_kind, path, *pairs = sys.argv[1:]
if device_kind == 'cpu':  # JAX says only 'cpu': name the model, as pytorch_dcgan.py does.
  try:
    with open('/proc/cpuinfo') as f:
      model = next((l.split(':', 1)[1].strip() for l in f if l.startswith('model name')), '')
  except OSError:
    model = ''
  device_kind = f'cpu ({model})' if model else device_kind
meta = {'meta': True, 'date': datetime.datetime.now().isoformat(timespec='seconds'),
        'host': socket.gethostname(), 'device_kind': device_kind, 'cpu_count': os.cpu_count(),
        'jax_version': jax.__version__, 'jaxlib_version': jaxlib.__version__,
        'flax_version': flax.__version__}
for pair in pairs:
  key, value = pair.split('=', 1)
  meta[key.rstrip(':')] = json.loads(value) if key.endswith(':') else value
with open(path, 'a') as f:
  f.write(json.dumps(meta) + '\n')
EOF
}

# run_one FRAMEWORK VARIANT BATCH COMMAND...: runs COMMAND (at most RUN_TIMEOUT seconds;
# 0: no limit) and appends its last JSON line, tagged, to $RESULTS; or, when it fails or
# prints none, a {"failed": true, ...} line. Every line gets the CPU's model, its vector
# flags and the ISA pin ($ISA): those, not the host, tell one machine's two ISAs apart.
run_one() {
  local framework=$1 variant=$2 batch=$3
  shift 3
  echo "$(basename "$0"): $framework $variant, batch $batch" >&2
  local line='' status=0
  timeout "$RUN_TIMEOUT" "$@" >"$tmp/out" 2>"$tmp/err" || status=$?
  if ((status == 0)); then line=$(grep '^{' "$tmp/out" | tail -n 1); fi
  if [[ -z $line ]]; then
    echo "$(basename "$0"): $framework $variant at batch $batch failed (exit $status):" >&2
    tail -n 5 "$tmp/err" | sed 's/^/    /' >&2
  fi
  "$PYTHON" - "$RESULTS" "$framework" "$variant" "$batch" "$status" "$line" "$tmp/err" "$ISA" \
    <<'EOF'
import json, os, sys
path, framework, variant, batch, status, line, err, isa = sys.argv[1:]
try:
  record = json.loads(line)
except ValueError:
  with open(err, errors='replace') as f:
    tail = [l.strip() for l in f if l.strip()][-1:]
  reason = 'timed out' if status in ('124', '137') else (tail[0] if tail else f'exit {status}')
  record = {'failed': True, 'global_batch': int(batch), 'error': reason[:300]}
record.setdefault('framework', framework)
record.setdefault('variant', variant)
try:
  with open('/proc/cpuinfo') as f:
    cpu = {key.strip(): value.strip() for key, _, value in (l.partition(':') for l in f)}
except OSError:
  cpu = {}
record['cpu_model'] = cpu.get('model name', '')
# The extensions that decide which kernels XLA, ATen and oneDNN pick.
record['cpu_flags'] = sorted(set(cpu.get('flags', '').split()) & {
    'avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_bf16'})
record['isa'] = isa
record['isa_env'] = {key: os.environ[key] for key in
                     ('XLA_FLAGS', 'ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA')
                     if key in os.environ}
with open(path, 'a') as f:
  f.write(json.dumps(record) + '\n')
EOF
}
