FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
RUN useradd --create-home --uid 1000 app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# var/media: the media volume (docker-compose.yml) takes this directory's owner when first created.
RUN mkdir -p /app/var/media && chown -R app:app /app
USER app

EXPOSE 8000
CMD ["gunicorn", "whatsappcrm_backend.wsgi:application", "--bind", "0.0.0.0:8000"]
