# controller-audit in a container: the wheel built from this checkout, installed in a slim
# Python image, run by a fixed non-root user (UID/GID 10001).  See docs/cli.md
# "A Kubernetes CronJob" (docs/deploy/) for the cron recipe that runs it.
#
#   docker build -t controller-audit:0.1.0 .
#   docker run --rm -e DATABASE_URL controller-audit:0.1.0 check

ARG PYTHON_IMAGE=python:3.12-slim

# Stage 1: build the wheel (the build tools stay in this stage).
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m pip install --no-cache-dir --root-user-action=ignore "build>=1"
COPY pyproject.toml README.md ./
COPY auditor/ auditor/
COPY checks/ checks/
COPY repairs/ repairs/
RUN python -m build --wheel --outdir /wheels .

# Stage 2: install the wheel and its dependencies (all binary wheels: no compiler needed).
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 controller-audit \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin controller-audit
COPY --from=build /wheels/ /wheels/
RUN python -m pip install --no-cache-dir --root-user-action=ignore /wheels/controller_audit-*.whl \
 && rm -rf /wheels
# The root filesystem may be read-only (the CronJob mounts /tmp): no bytecode written at run time.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
ENTRYPOINT ["controller-audit"]
CMD ["--help"]
