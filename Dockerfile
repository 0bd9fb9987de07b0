# The pages' front-end packages (MapLibre GL, Chart.js, the Noto Sans JP web font), from the npm
# registry (package-lock.json), copied by scripts/vendor.sh as `make vendor` does; no CDN at run time.
FROM node:20-bookworm-slim AS vendor
WORKDIR /build
COPY package.json package-lock.json ./
COPY scripts/vendor.sh scripts/
RUN npm ci --ignore-scripts --no-audit --no-fund && bash scripts/vendor.sh

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
COPY --from=vendor /build/maps/static/maps/vendor/ maps/static/maps/vendor/
COPY --from=vendor /build/reports/static/reports/vendor/ reports/static/reports/vendor/
COPY --from=vendor /build/backend/static/vendor/ backend/static/vendor/
RUN TSUNAGU_ENV=development python manage.py collectstatic --noinput -v 0
RUN useradd --system --home /app tsunagu && mkdir -p /app/.local/media && chown -R tsunagu /app/.local
USER tsunagu
ENV TSUNAGU_ENV=production
EXPOSE 8000
# compose.yaml runs migrations first and then this same server; its settings: backend/gunicorn.conf.py.
CMD ["gunicorn", "-c", "backend/gunicorn.conf.py", "--bind", "0.0.0.0:8000"]
