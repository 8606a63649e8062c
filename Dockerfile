# The app image for docker-compose.yml: gunicorn serving dmobs.wsgi.
# Front-end packages come from npm (package-lock.json), as in `make install`.
FROM node:22.12.0-bookworm-slim AS frontend
WORKDIR /src
COPY package.json package-lock.json ./
# Only what the app serves: the MongoDB driver is a test tool (devDependencies).
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=dmobs.settings
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
COPY --from=frontend /src/node_modules ./node_modules
# collectstatic needs a key only to import settings; it is not kept.
RUN SECRET_KEY=build-only DMOBS_HTTPS=false python manage.py collectstatic --no-input \
    && useradd --uid 1000 --no-create-home --shell /usr/sbin/nologin dmobs \
    && mkdir -p /app/var /var/log/dmobs \
    && chown -R dmobs:dmobs /app/var /var/log/dmobs
USER dmobs
EXPOSE 8000
# Migrates the default database and, when AUDIT_DATABASE_URL is another one
# (MongoDB included), the audit alias; then runs the command.
ENTRYPOINT ["sh", "ops/app/entrypoint.sh"]
CMD ["gunicorn", "-c", "dmobs/gunicorn.conf.py", "dmobs.wsgi"]
