#!/usr/bin/env bash
# Make sure Debian's Chromium and a Chinese font (for readable screenshots) are installed for the browser
# tests; print Chromium's path.
set -euo pipefail
browser=${CHROMIUM_PATH:-/usr/bin/chromium}
packages=()
[ -x "$browser" ] || packages+=(chromium)
[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || packages+=(fonts-wqy-zenhei)
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing Debian packages: ${packages[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${packages[@]}" >/dev/null
fi
[ -x "$browser" ] || { echo "error: Chromium not found at $browser" >&2; exit 1; }
echo "$browser"
