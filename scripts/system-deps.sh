#!/usr/bin/env bash
# Installs the operating-system packages つなぐ needs, only those that are missing.
# Debian 12 / Ubuntu: PostgreSQL 15 + PostGIS 3, GeoDjango's libraries (GDAL, GEOS, PROJ),
# ogr2ogr for GIS files, exiftool (photo tests), docker-compose (validates compose.yaml) and
# Chromium with its driver (the map page's browser test; Playwright drives Debian's /usr/bin/chromium).
set -euo pipefail

packages=(
  postgresql-15 postgresql-15-postgis-3 postgresql-contrib
  libgdal32 libgeos-c1v5 libproj25 gdal-bin
  libimage-exiftool-perl
  chromium chromium-driver
)
# npm installs the pages' front-end packages (MapLibre GL, Chart.js, the Noto Sans JP web font: make vendor);
# use the machine's Node.js if it has one.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
if [ "${TSUNAGU_WITH_COMPOSE:-1}" = 1 ]; then
  packages+=(docker-compose)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "system-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "system-deps: missing packages (${missing[*]}) and not root; install them and retry" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package may create and start a default cluster on port 5432; we use our own.
