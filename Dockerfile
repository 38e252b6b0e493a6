# The search service: workers, dashboard, gRPC proxy and evaluation all run this image (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The CPU build of torch first, from PyTorch's CPU index: PyPI's torch is the multi-GB CUDA build,
# and installing the project afterwards keeps this one (pyproject.toml asks for torch>=2.4,<2.14).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# Dependencies change less often than the code: install them in their own layer.
COPY pyproject.toml README.md ./
COPY models/__init__.py models/
COPY search/__init__.py search/
RUN pip install . && pip uninstall -y digit-pair-search

# Editable install, so the package finds the study definitions in /app/studies.
COPY models models
COPY search search
COPY studies studies
RUN pip install --no-deps -e . \
    && useradd --create-home --uid 1000 search
USER search
WORKDIR /home/search

# One optuna major on every worker and the database (optuna 5 changed timestamps and the gRPC format).
RUN python -c "import optuna, torch; assert optuna.__version__.startswith('5.'), optuna.__version__; assert torch.version.cuda is None, torch.version.cuda"

CMD ["search", "--help"]
