# What benchmarks/compare.sh and benchmarks/quality_compare.sh share; sourced, not run.
#
# Expects PYTHON (the project's Python), TORCH_VENV, TORCH_WHEEL_DIR and optionally
# TORCH_WHEEL to be set, as both scripts' headers describe.

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

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
