FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY wio ./wio
COPY proxy ./proxy
COPY admin_api ./admin_api
COPY policy ./policy
COPY signing ./signing
COPY indexer ./indexer
COPY benchmarks ./benchmarks
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["wio"]
