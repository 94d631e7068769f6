#!/usr/bin/env bash
# Re-vendor Apache ECharts (the minified browser bundle and its licence) into apps/staff/static/vendor/.
# The staff console serves the file itself (CSP script-src 'self'), so nothing loads from a CDN.
# Usage: scripts/vendor-echarts.sh [version]   (default: the pinned version below)
set -euo pipefail
version=${1:-5.6.0}
# npm's integrity of echarts-5.6.0.tgz; checked only for the pinned version.
pinned_integrity="sha512-oTbVTsXfKuEhxftHqL5xprgLoc0k7uScAwtryCgWF6hPYFLRwOUHiFmHGCBKP5NPFNkDVopOieyUqYGH8Fa3kA=="
root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/apps/staff/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
integrity=$(npm pack --json "echarts@$version" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["integrity"])')
if [ "$version" = "5.6.0" ] && [ "$integrity" != "$pinned_integrity" ]; then
  echo "error: echarts@$version integrity $integrity differs from the pinned one" >&2
  exit 1
fi
tar xzf "echarts-$version.tgz"
mkdir -p "$target"
cp package/dist/echarts.min.js "$target/echarts.min.js"
cp package/LICENSE "$target/echarts.LICENSE"
[ -f package/NOTICE ] && cp package/NOTICE "$target/echarts.NOTICE"
echo "echarts@$version ($integrity) copied to ${target#"$root"/}"
