# MapLibre GL for the map page, from the npm registry (package-lock.json); no CDN at run time.
FROM node:20-bookworm-slim AS vendor
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && mkdir -p out && cp node_modules/maplibre-gl/dist/maplibre-gl.mjs node_modules/maplibre-gl/dist/maplibre-gl-worker.mjs \
    node_modules/maplibre-gl/dist/maplibre-gl.css node_modules/maplibre-gl/LICENSE.txt out/

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgdal32 libgeos-c1v5 libproj25 gdal-bin \
 && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
COPY --from=vendor /build/out/ maps/static/maps/vendor/
RUN TSUNAGU_ENV=development python manage.py collectstatic --noinput -v 0
RUN useradd --system --home /app tsunagu && mkdir -p /app/.local/media && chown -R tsunagu /app/.local
USER tsunagu
ENV TSUNAGU_ENV=production
EXPOSE 8000
# compose.yaml runs migrations first and then this same server; its settings: backend/gunicorn.conf.py.
CMD ["gunicorn", "-c", "backend/gunicorn.conf.py", "--bind", "0.0.0.0:8000"]
