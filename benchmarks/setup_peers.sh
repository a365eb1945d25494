#!/usr/bin/env bash
# Makes one virtual environment per SDK under benchmarks/.venvs/ (the SDKs' import names clash).
#
#   bash benchmarks/setup_peers.sh            # all: ours ours-stdlib rudder segment posthog
#   bash benchmarks/setup_peers.sh rudder     # only the named ones
#
# Idempotent: an existing venv is reused and the install re-run (pip skips what is there).
# A failed install is reported and skipped; the script exits 0 unless every install failed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venvs="$here/.venvs"
python="${PYTHON:-python3}"

# name -> pip arguments; ";" separates pip runs. Every SDK is installed plainly, as
# `pip install <package>` would: ours is the plain editable install (orjson comes with it
# on CPython), ours-stdlib is ours where orjson cannot be installed (PyPy, a platform
# without wheels): --no-deps, then the other requirements.
declare -A spec=(
  [ours]="-e $root"
  [ours-stdlib]="--no-deps -e $root;requests>=2.25 backoff>=2.0"
  [rudder]="rudder-sdk-python==2.1.9"
  [segment]="segment-analytics-python==2.4.0"
  [posthog]="posthog"
)
order=(ours ours-stdlib rudder segment posthog)
if [ "$#" -gt 0 ]; then order=("$@"); fi

mkdir -p "$venvs"
ok=()
failed=()
for name in "${order[@]}"; do
  if [ -z "${spec[$name]+x}" ]; then
    echo "setup_peers: unknown SDK '$name' (known: ${!spec[*]})" >&2
    failed+=("$name")
    continue
  fi
  venv="$venvs/$name"
  echo "== $name -> $venv (${spec[$name]})"
  if [ ! -x "$venv/bin/python" ]; then
    if ! "$python" -m venv "$venv"; then
      echo "setup_peers: could not create $venv; skipping $name" >&2
      failed+=("$name")
      continue
    fi
  fi
  installed=1
  IFS=';' read -ra runs <<< "${spec[$name]}"
  for args in "${runs[@]}"; do
    # shellcheck disable=SC2086  # the spec is a list of pip arguments
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $args; then
      installed=0
      break
    fi
  done
  if [ "$name" = "ours-stdlib" ] && "$venv/bin/python" -c "import orjson" 2>/dev/null; then
    "$venv/bin/python" -m pip uninstall --quiet --yes orjson || installed=0
  fi
  if [ "$installed" = 1 ]; then
    ok+=("$name")
  else
    echo "setup_peers: pip install failed for $name; skipping it (rerun to retry)" >&2
    rm -f "$venv/.ready"
    failed+=("$name")
    continue
  fi
  "$venv/bin/python" -m pip freeze --disable-pip-version-check > "$venv/.ready" 2>/dev/null || true
done

echo "setup_peers: ready: ${ok[*]:-none}; failed: ${failed[*]:-none}"
if [ "${#ok[@]}" -eq 0 ]; then exit 1; fi
exit 0
