#!/usr/bin/env bash
# Re-vendor the rasa-webchat UMD bundle (and its licence) into bot/channels/webchat_static/.
# The page serves these files itself, so nothing is loaded from a CDN at runtime. The bundle's CSS
# @imports the Inter font from fonts.googleapis.com: that one CSS chunk is emptied here (the page uses
# system Chinese fonts, and its Content-Security-Policy would block the request anyway).
# Usage: scripts/vendor-webchat.sh [version]   (default: the pinned version below)
set -euo pipefail
version=${1:-1.0.1}
# npm's integrity of rasa-webchat-1.0.1.tgz; checked only for the pinned version.
pinned_integrity="sha512-Ld1zVJvTAaTrs6A5p8t70agNNrKYRyXlvqXZRgBoDvKKUXbA0jhJKECi5bdPGlaR6jsmqWtVylHS+YqIqo0x8w=="
root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/bot/channels/webchat_static"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
integrity=$(npm pack --json "rasa-webchat@$version" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["integrity"])')
if [ "$version" = "1.0.1" ] && [ "$integrity" != "$pinned_integrity" ]; then
  echo "error: rasa-webchat@$version integrity $integrity differs from the pinned one" >&2
  exit 1
fi
tar xzf "rasa-webchat-$version.tgz"
font_import='@import url(https://fonts.googleapis.com/css?family=Inter:400,500,700&display=swap);'
python3 - "$font_import" package/lib/index.js "$target/rasa-webchat.js" <<'PY'
import sys
from pathlib import Path

font_import, source, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
bundle = source.read_text(encoding="utf-8")
chunk = f'"{font_import}"'
if bundle.count(chunk) == 0:
    sys.exit("error: the Google Fonts @import was not found; check the bundle for remote assets by hand")
bundle = bundle.replace(chunk, '""')
if "fonts.googleapis.com" in bundle:
    sys.exit("error: the bundle still references fonts.googleapis.com")
target.write_text(bundle, encoding="utf-8")
print(f"removed {source.read_text(encoding='utf-8').count(chunk)} Google Fonts @import chunk(s)")
PY
cp package/LICENSE "$target/rasa-webchat.LICENSE"
echo "rasa-webchat@$version ($integrity) copied to ${target#"$root"/}"
sha256sum "$target/rasa-webchat.js"
