#!/usr/bin/env bash
# Print the path of a working Python 3.10 interpreter (rasa 3.6 needs exactly 3.10), or fail clearly.
set -u
candidates=()
[ -n "${PYTHON310:-}" ] && candidates+=("$PYTHON310")
candidates+=(python3.10)
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  for dir in "$root"/versions/3.10*; do [ -x "$dir/bin/python3.10" ] && candidates+=("$dir/bin/python3.10"); done
fi
for dir in "$HOME"/.pyenv/versions/3.10*; do [ -x "$dir/bin/python3.10" ] && candidates+=("$dir/bin/python3.10"); done
candidates+=(/usr/bin/python3.10 /usr/local/bin/python3.10)
for python in "${candidates[@]}"; do
  if "$python" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then
    command -v "$python" 2>/dev/null || echo "$python"
    exit 0
  fi
done
echo "error: Python 3.10 not found (rasa 3.6 needs it): install it, e.g. 'pyenv install 3.10', or set PYTHON310=/path/to/python3.10" >&2
exit 1
