# A runner for containers that serves TorchScript: berth-runtime-onnx (Node and berth's runner
# code, whose model fetcher this runner uses) plus Debian's python3-torch (with OpenBLAS: without
# it torch falls back to the reference BLAS and runs 20-40x slower) and berth's python runner,
# which speaks berth's runner protocol; see docs/guides/containers.md.
#
#   docker build -f docker/runtime-onnx.Dockerfile -t berth-runtime-onnx .
#   docker build -f docker/runtime-torch.Dockerfile -t berth-runtime-torch .
#
# The command is `python3 python/torch_worker.py` in /app; give another after the image name.
# RUNTIME_ONNX_IMAGE: the berth-runtime-onnx image built from the same checkout.
ARG RUNTIME_ONNX_IMAGE=berth-runtime-onnx

FROM ${RUNTIME_ONNX_IMAGE}
USER root
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    python3 python3-torch libopenblas0-pthread \
  && rm -rf /var/lib/apt/lists/*
COPY python ./python
USER berth
CMD ["python3", "python/torch_worker.py"]
