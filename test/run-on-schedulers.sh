#!/usr/bin/env bash
# Runs the serving, lifecycle and real-model suites again with each model's runners in
# containers: BERTH_SCHEDULER=docker, then swarm (test/helpers/test-app.ts reads
# BERTH_TEST_SCHEDULER). Needs a built tree (npm run build && npm run build:test), DOCKER_HOST
# naming an engine that is a Swarm manager (.ci/engine.sh starts one), and the runtime images
# berth-runtime-onnx:test and berth-runtime-torch:test (or BERTH_TEST_RUNTIME_IMAGE_ONNX/_TORCH).
#
#   npm run test:schedulers            # both
#   npm run test:schedulers -- swarm   # one
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DOCKER_HOST:?DOCKER_HOST must name the engine (a Swarm manager)}"
suites=(
  serving deploy-requests model-upload tensors open-inference-protocol readiness on-demand
  request-memory
  readme-example raw-inference openai-embeddings several-instances
  task-pipelines huggingface-upload weights-upload converted-encoders torchscript
)
files=()
for suite in "${suites[@]}"; do files+=("build/test/e2e/$suite.test.js"); done
schedulers=("$@")
[ ${#schedulers[@]} -gt 0 ] || schedulers=(docker swarm)
for s in "${schedulers[@]}"; do
  echo "# BERTH_TEST_SCHEDULER=$s"
  BERTH_TEST_SCHEDULER=$s node --test --test-concurrency=2 "${files[@]}"
done
