#!/usr/bin/env bash
# Make sure libfaketime (Debian's package) is installed, for the test run with the machine's clock moved ahead;
# prints the path of the library to preload.
set -euo pipefail
find_lib() { ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1; }
lib=$(find_lib || true)
if [ -z "$lib" ]; then
  echo "libfaketime is not installed: installing it" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libfaketime >/dev/null
  lib=$(find_lib || true)
fi
if [ -z "$lib" ]; then echo "error: libfaketime did not install" >&2; exit 1; fi
echo "$lib"
