# A runner for containers that serves TorchScript: Debian's python3-torch (with OpenBLAS: without
# it torch falls back to the reference BLAS and runs 20-40x slower) and berth's python runner,
# which speaks berth's runner protocol; see docs/guides/containers.md.
#
#   docker build -f docker/runtime-torch.Dockerfile -t berth-runtime-torch .
#
# The command is `python3 python/torch_worker.py` in /app; give another after the image name.
# BASE_IMAGE: as in the Dockerfile (the runner needs no Node, but a shared base is pulled once).
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE}
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    python3 python3-torch libopenblas0-pthread \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --gid 10001 berth \
  && useradd --uid 10001 --gid berth --no-create-home --shell /usr/sbin/nologin berth
WORKDIR /app
COPY python ./python
USER berth
CMD ["python3", "python/torch_worker.py"]
