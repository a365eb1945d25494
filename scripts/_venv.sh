# Shared by scripts/test and scripts/demo: make (or reuse) .venv and install the package into it.
# Usage: source scripts/_venv.sh EXTRAS
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RUDDER_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e "$root[$1]"
export PATH="$venv/bin:$PATH"
cd "$root"
