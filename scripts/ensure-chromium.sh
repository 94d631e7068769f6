#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests; print its path.
set -euo pipefail
browser=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$browser" ]; then
  echo "Chromium is not installed: installing Debian's package" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi
[ -x "$browser" ] || { echo "error: Chromium not found at $browser" >&2; exit 1; }
echo "$browser"
