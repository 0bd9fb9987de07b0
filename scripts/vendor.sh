#!/usr/bin/env bash
# The front-end packages npm installed from package-lock.json (node_modules/), copied into our static
# files: the pages load them from the backend itself, never from a CDN (closed municipal networks).
# `make vendor` and the Dockerfile's vendor stage both run this.
#
#   maplibre-gl               → maps/static/maps/vendor/              the map page
#   chart.js                  → reports/static/reports/vendor/        the reports page's charts
#   @fontsource/noto-sans-jp  → backend/static/vendor/noto-sans-jp/   both pages: Japanese drawn on
#       machines without Japanese fonts. Weights 400 and 700 only, woff2 only, in the unicode-range
#       subsets Fontsource ships (a browser fetches the few subsets a page's text needs).
set -euo pipefail
cd "${1:-.}"
NM=node_modules

maps=maps/static/maps/vendor
mkdir -p "$maps"
cp "$NM"/maplibre-gl/dist/{maplibre-gl.mjs,maplibre-gl-worker.mjs,maplibre-gl.css} "$maps"/
if [ -f "$NM"/maplibre-gl/dist/maplibre-gl.js ]; then cp "$NM"/maplibre-gl/dist/maplibre-gl.js "$maps"/; fi
cp "$NM"/maplibre-gl/LICENSE.txt "$maps"/LICENSE.txt

reports=reports/static/reports/vendor
mkdir -p "$reports"
# With its source map: the file names it, and collectstatic's manifest refuses a missing reference.
cp "$NM"/chart.js/dist/chart.umd.min.js "$NM"/chart.js/dist/chart.umd.min.js.map "$reports"/
cp "$NM"/chart.js/LICENSE.md "$reports"/chart.js-LICENSE.md

font=backend/static/vendor/noto-sans-jp
src="$NM"/@fontsource/noto-sans-jp
rm -rf "$font"/files
mkdir -p "$font"/files
cp "$src"/LICENSE "$font"/LICENSE
# One stylesheet for both weights, without the woff fallback (every browser we serve reads woff2, and
# a url() to a file we do not copy would break collectstatic's manifest); then the files it names.
{
  echo "/* Noto Sans JP (SIL Open Font License 1.1), from @fontsource/noto-sans-jp; written by scripts/vendor.sh */"
  sed -E "s#, url\(\./files/[^)]+\.woff\) format\('woff'\)##" "$src"/400.css "$src"/700.css
} > "$font"/noto-sans-jp.css
if grep -q "\.woff)" "$font"/noto-sans-jp.css; then
  echo "vendor.sh: a woff url() is left in noto-sans-jp.css (did Fontsource change its CSS?)" >&2
  exit 1
fi
for f in $(grep -o 'files/[^)]*\.woff2' "$font"/noto-sans-jp.css); do
  cp "$src/$f" "$font/$f"
done
