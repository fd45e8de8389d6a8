# The command catalog: every way into the project is a target here (see README).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The real AWS CLI (v1, from PyPI; locks/awscli.txt) in a venv of its own: it pins its own botocore, older than
# the project's.
AWS_CLI_VENV := .venv-awscli
# The shared layer's packages alone (layers/shared/python/requirements.txt) on the Lambda runtime's Python: what the
# predict function imports at a cold start, measured without the dev venv's extras (tests/unit/test_cold_start_imports.py,
# make bench's cold-start row).
LAYER_VENV := .venv-layer

# `sam build` needs python3.12 on PATH; pyenv machines select it beside the dev Python.
PYENV_312 := $(shell command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -m1 -E '^3\.12\.')
ifneq ($(PYENV_312),)
export PYENV_VERSION ?= $(shell pyenv version-name 2>/dev/null | cut -d: -f1):$(PYENV_312)
endif
# SAM's account lookup must not stall offline.
export AWS_MAX_ATTEMPTS ?= 1
export SAM_CLI_TELEMETRY := 0
export SAGEMAKER_SUPPRESS_V2_WARNING := 1

.PHONY: help demo serve predict setup lock checkov-venv test captured plan reliability bench mutation preflight evaluate destroy bootstrap-stage package deploy-stage train-stage record-release rollback-stage integration-test export-model promote-model upload-golden register-model destroy-stage pipeline-rehearsal container-versions container-versions-venvs lambda-image lint build deploy upload-data upload-weights starter-model local-invoke start-api local-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{name[NR] = $$1; text[NR] = $$2; \
		if (length($$1) > width) width = length($$1)} END {for (i = 1; i <= NR; i++) printf "  make %-*s  %s\n", width, name[i], text[i]}'

# The offline stack imports the layer and the launchers the way Lambda and the training box do.
OFFLINE_PATH := PYTHONPATH=.:layers/shared/python:training_jobs

demo: setup ## train -> deploy -> scale -> predict offline, no AWS account (DATA_DIR=... for your data)
	$(OFFLINE_PATH) $(BIN)/python -m offline_stack.demo

serve: setup ## the demo, then keep the API up on loopback and print curl commands (Ctrl-C stops it)
	$(OFFLINE_PATH) $(BIN)/python -m offline_stack.demo --serve

setup: $(STAMP) ## create .venv with the pinned toolchain (idempotent)

# Every venv installs from a lock file with the index's SHA-256 of each file (pip's hash-checking mode): a file
# that differs from the one published when the lock was written is refused, and so is a dependency the lock
# lacks. requirements-dev.txt says what the dev venv is for; requirements-lock.txt pins all of it (a test checks).
PIP_LOCKED := -m pip install --quiet --require-hashes -r

$(STAMP): requirements-dev.txt requirements-lock.txt locks/pip.txt locks/awscli.txt layers/shared/python/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP_LOCKED) locks/pip.txt
	$(BIN)/python $(PIP_LOCKED) requirements-lock.txt
	test -f $(AWS_CLI_VENV)/.installed || { rm -rf $(AWS_CLI_VENV) && $(PYTHON) -m venv $(AWS_CLI_VENV) && \
		$(AWS_CLI_VENV)/bin/python $(PIP_LOCKED) locks/awscli.txt && touch $(AWS_CLI_VENV)/.installed; }
	if command -v python3.12 >/dev/null; then rm -rf $(LAYER_VENV) && python3.12 -m venv $(LAYER_VENV) && \
		$(LAYER_VENV)/bin/python $(PIP_LOCKED) layers/shared/python/requirements.txt ; \
	else echo "no python3.12: $(LAYER_VENV) (the layer's packages on Lambda's Python) is not made"; fi
	touch $@

lock: ## add the index's hashes to every lock file's pins (after changing a pin; needs the package registry)
	$(BIN)/python -m ops.lock requirements-lock.txt locks/*.txt layers/shared/python/requirements.txt

# checkov (locks/checkov.txt) pins its own boto3 (older than SAM's): it lives in a venv of its own
CHECKOV_VENV := .venv-checkov

checkov-venv: ## checkov in a venv of its own (make test runs it on the template)
	test -f $(CHECKOV_VENV)/.installed || { rm -rf $(CHECKOV_VENV) && $(PYTHON) -m venv $(CHECKOV_VENV) && \
		$(CHECKOV_VENV)/bin/python $(PIP_LOCKED) locks/checkov.txt && touch $(CHECKOV_VENV)/.installed; }

test: setup checkov-venv ## run every offline test (unit, integration, and sam local invoke when a Docker engine runs)
	@if ! docker info >/dev/null 2>&1; then \
		echo "No Docker engine answers: the sam local invoke tests will skip (the in-process runner covers every event)"; \
	elif ! $(MAKE) --no-print-directory lambda-image; then \
		echo "No Lambda base image (pull it, or make lambda-image as root): the sam local invoke tests will skip"; fi
	$(BIN)/pytest --durations=30 tests/unit tests/integration

reliability: setup ## fuzz, nasty images, faults and load against the offline stack: one table (.offline/reliability.json)
	$(OFFLINE_PATH) $(BIN)/python -m reliability

plan: setup ## capacity and cost at a peak, and instances vs serverless for a traffic (PEAK=4 REQUESTS_PER_DAY=1000; ARGS="--p99-ms 500 --validate ...")
	mkdir -p .offline
	$(OFFLINE_PATH) $(BIN)/python -m ops.capacity_plan --peak-rps $(or $(PEAK),4) --plot .offline/plan.png \
		--requests-per-day $(or $(REQUESTS_PER_DAY),1000) --kinds-plot .offline/plan-endpoint-kinds.png \
		$(if $(wildcard .offline/bench/bench.json),--from-bench) $(ARGS)

captured: setup ## what the endpoint was asked and answered, from its data capture (BUCKET=... [ARGS="--limit 50"])
	$(OFFLINE_PATH) $(BIN)/python -m ops.captured_requests --bucket "$(BUCKET)" $(ARGS)

bench: setup build ## the project against course-style baselines: ratios, targets, pass/fail (.offline/bench/bench.md); the cold start as built for Lambda
	$(OFFLINE_PATH) $(BIN)/python -m benchmarks

# Mutation testing (pytest-gremlins) over the code whose mistakes a caller would feel first, driven by the
# unit tests that exercise it; about an hour for every module on 2 cores (MODULES=... or BASE=<ref> for a part).
# Survivors are listed and justified in docs/testing.md.
mutation: setup ## mutation testing of every module that decides something, against tests/unit (BASE=<ref>: only changed modules)
	$(BIN)/python -m tests.mutation $(if $(BASE),--base $(BASE)) $(if $(MODULES),--modules $(MODULES))

# The AWS PyTorch images' own versions, in venvs of their own from the package registry (CUDA builds of torch:
# about 4 minutes and 6 GB each, made once). Not part of make test: run it after changing the torch pins, the DLC
# versions or the artifact format, and before each release (docs/testing.md).
DLC_TRAINING := .venv-dlc-training
DLC_INFERENCE := .venv-dlc-inference

container-versions: container-versions-venvs starter-model ## train under the training image's torch 2.8, serve under the inference image's 2.6, compare with dev torch
	$(OFFLINE_PATH) $(BIN)/python -m ops.container_versions --training-python $(DLC_TRAINING)/bin/python \
		--inference-python $(DLC_INFERENCE)/bin/python --starter-model .offline/starter-model/model.tar.gz

container-versions-venvs: ## the two venvs make container-versions uses (the AWS images' torch, from the registry; needs only python3.12)
	test -f $(DLC_TRAINING)/.installed || { rm -rf $(DLC_TRAINING) && python3.12 -m venv $(DLC_TRAINING) && \
		$(DLC_TRAINING)/bin/python $(PIP_LOCKED) locks/dlc-training.txt && touch $(DLC_TRAINING)/.installed; }
	test -f $(DLC_INFERENCE)/.installed || { rm -rf $(DLC_INFERENCE) && python3.12 -m venv $(DLC_INFERENCE) && \
		$(DLC_INFERENCE)/bin/python $(PIP_LOCKED) locks/dlc-inference.txt && touch $(DLC_INFERENCE)/.installed; }

lambda-image: ## build the Lambda python3.12 base image offline (air-gapped machines, CI); idempotent
	@command -v debootstrap >/dev/null || { echo "lambda-image needs debootstrap (apt-get install debootstrap)"; exit 2; }
	offline_stack/lambda_base_image/build.sh

lint: setup ## ruff, mypy, sam validate --lint, policy linters, workflow linters (actionlint, zizmor)
	$(BIN)/ruff check .
	$(BIN)/mypy
	for handler in functions/*/app.py; do $(BIN)/mypy $$handler || exit 1; done
	$(BIN)/sam validate --lint --region us-east-1
	$(BIN)/cfn-lint pipeline/bootstrap.yaml
	$(BIN)/actionlint .github/workflows/*.yaml
	$(BIN)/zizmor --offline --persona pedantic --no-progress .github/workflows
	$(BIN)/pytest -q tests/unit/test_policies.py tests/unit/test_cloudformation_execution_policy.py tests/unit/test_bootstrap.py \
		tests/unit/test_state_machine.py tests/unit/test_code_layout.py tests/unit/test_workflows.py

preflight: setup ## what a deploy would run into in your account (quotas, concurrency, Debugger): ARGS="--parameter-overrides K=V"
	$(OFFLINE_PATH) $(BIN)/python -m ops.preflight $(ARGS)

destroy: setup ## delete the stack and what the pipeline made outside it (endpoint, models, scaling, bucket data)
	PATH=$(abspath $(BIN)):$$PATH $(OFFLINE_PATH) $(BIN)/python -m ops.destroy $(ARGS)

# Lambda cannot write bytecode into /opt or /var/task, and SAM's build ships none, so without this step every
# cold start compiles boto3/botocore, Powertools and the project anew. unchecked-hash: the .pyc files stay valid
# although the zip's timestamps (2 s resolution) differ from the ones compiled against.
build: setup ## sam build, keep only the AWS models the functions call, compile for the Lambda runtime (python3.12)
	PATH=$(abspath $(BIN)):$$PATH sam build
	$(OFFLINE_PATH) $(BIN)/python -m ops.prune_botocore_models .aws-sam/build
	python3.12 -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build

deploy: build ## sam deploy (guided the first time: make deploy ARGS=--guided)
	PATH=$(abspath $(BIN)):$$PATH sam deploy $(ARGS)

# --- The release pipeline's steps (.github/workflows/pipeline.yaml calls these and nothing else; docs/deploy.md,
# "Deploy from a pipeline"). STAGE is a samconfig.toml environment (testing, prod); FEATURE_BRANCH (from the environment,
# never pasted into a command line) makes the stage's configuration a stack of that branch's own.
STAGE ?= testing
STAGE_ARGS = --stage $(STAGE) --branch "$$FEATURE_BRANCH"
STAGES_CLI = $(OFFLINE_PATH) $(BIN)/python -m ops.stages
PACKAGED = .aws-sam/packaged-$(STAGE).yaml
PROMOTION_DIR ?= .promotion
RELEASE_DIR ?= previous-release
SAM := PATH=$(abspath $(BIN)):$$PATH sam

# The region of a stage is samconfig.toml's, for every AWS call a pipeline target makes (whatever the job's
# credentials step set).
STAGE_REGION = AWS_REGION="$$($(STAGES_CLI) region $(STAGE_ARGS))" AWS_DEFAULT_REGION="$$($(STAGES_CLI) region $(STAGE_ARGS))"

bootstrap-stage: setup ## deploy a stage's pipeline identities (pipeline/bootstrap.yaml): STAGE=testing|feature|prod REPOSITORY=org/repo
	$(OFFLINE_PATH) $(BIN)/python -m ops.bootstrap deploy --stage $(STAGE) --repository "$(REPOSITORY)" \
		--aws $(AWS_CLI_VENV)/bin/aws $(if $(OIDC_PROVIDER),--existing-oidc-provider "$(OIDC_PROVIDER)")

package: setup ## sam package the built app for a stage: STAGE=testing|prod PIPELINE_BUCKET=<its artifacts bucket>
	@test -f .aws-sam/build/template.yaml || { echo "make build first (the workflow's build job does)"; exit 2; }
	@test -n "$(PIPELINE_BUCKET)" || { echo "PIPELINE_BUCKET: the stage's artifacts bucket (make bootstrap-stage)"; exit 2; }
	$(SAM) package --config-env $(STAGE) --s3-bucket "$(PIPELINE_BUCKET)" --region "$$($(STAGES_CLI) region $(STAGE_ARGS))" \
		--template-file .aws-sam/build/template.yaml --output-template-file $(PACKAGED)

deploy-stage: setup ## sam deploy a packaged stage: STAGE=... PIPELINE_BUCKET=... CLOUDFORMATION_ROLE=... PERMISSIONS_BOUNDARY=... [ARTIFACTS_KEY_USERS=arn,...]
	@test -f $(PACKAGED) || { echo "make package STAGE=$(STAGE) first"; exit 2; }
	@test -n "$(PIPELINE_BUCKET)" -a -n "$(CLOUDFORMATION_ROLE)" -a -n "$(PERMISSIONS_BOUNDARY)" || { echo "PIPELINE_BUCKET, \
		CLOUDFORMATION_ROLE and PERMISSIONS_BOUNDARY: what make bootstrap-stage made for the stage"; exit 2; }
	listed="$$($(STAGES_CLI) parameter-overrides $(STAGE_ARGS))" && \
	eval "overrides=($$listed PermissionsBoundaryArn=$(PERMISSIONS_BOUNDARY))" && \
	$(SAM) deploy --config-env $(STAGE) --template-file $(PACKAGED) --stack-name "$$($(STAGES_CLI) stack-name $(STAGE_ARGS))" \
		--region "$$($(STAGES_CLI) region $(STAGE_ARGS))" --s3-bucket "$(PIPELINE_BUCKET)" --role-arn "$(CLOUDFORMATION_ROLE)" \
		--parameter-overrides "$${overrides[@]}" --no-confirm-changeset --no-fail-on-empty-changeset

train-stage: setup ## testing trains, judges and deploys a model of this commit's training code unless it serves one: STAGE=testing
	$(STAGE_REGION) $(OFFLINE_PATH) $(BIN)/python -m ops.train_stage $(STAGE_ARGS)

record-release: setup ## before a stage's deploy: what it serves now (template, parameters, model), for rollback-stage
	$(STAGE_REGION) $(OFFLINE_PATH) $(BIN)/python -m ops.rollback record $(STAGE_ARGS) --dir $(RELEASE_DIR)

rollback-stage: setup ## after a failed release: back to what record-release saw: STAGE=... PIPELINE_BUCKET=... CLOUDFORMATION_ROLE=...
	$(STAGE_REGION) $(OFFLINE_PATH) $(BIN)/python -m ops.rollback restore $(STAGE_ARGS) --dir $(RELEASE_DIR) \
		--bucket "$(PIPELINE_BUCKET)" --role-arn "$(CLOUDFORMATION_ROLE)"

integration-test: setup ## the post-deploy suite (tests/deployed) against a stage's stack: STAGE=... (API_TOKEN=... for JWT)
	mkdir -p .offline
	$(STAGE_REGION) $(OFFLINE_PATH) $(BIN)/python -m ops.stack_outputs $(STAGE_ARGS) --output .offline/outputs-$(STAGE).json
	$(STAGE_REGION) STACK_OUTPUTS_FILE=.offline/outputs-$(STAGE).json $(BIN)/pytest -q tests/deployed

export-model: setup ## write the approved model a stage serves, and its record, to PROMOTION_DIR (PACKAGE_ARN=... another)
	$(STAGE_REGION) $(OFFLINE_PATH) $(BIN)/python -m ops.promote_model export $(STAGE_ARGS) --dir $(PROMOTION_DIR) \
		$(if $(PACKAGE_ARN),--package-arn "$(PACKAGE_ARN)")

promote-model: setup ## re-score PROMOTION_DIR's approved model on a stage's golden set, promote and release it there: STAGE=prod
	$(STAGE_REGION) $(OFFLINE_PATH) $(BIN)/python -m ops.promote_model promote $(STAGE_ARGS) --dir $(PROMOTION_DIR) --release

predict: setup ## one signed POST /predictions with whatever credentials the AWS CLI uses (SSO, profile, role): IMAGE=dog.jpg [ARGS="--stage prod"]
	$(BIN)/python -m ops.predict --image "$(IMAGE)" $(ARGS)

evaluate: setup ## a model on labelled photos, as served: MODEL=<model.tar.gz, artifact folder or endpoint:NAME> DATA_DIR=<breed folders>
	@test -n "$(MODEL)" -a -n "$(DATA_DIR)" || { echo "usage: make evaluate MODEL=<model.tar.gz|folder|endpoint:NAME> DATA_DIR=<breed folders> [ARGS=--output DIR]"; exit 2; }
	$(OFFLINE_PATH) $(BIN)/python -m ops.evaluate_model --model "$(MODEL)" --data-dir "$(DATA_DIR)" $(ARGS)

upload-golden: setup ## the labelled photos every promotion into a stage is re-scored on: STAGE=prod DATA_DIR=<breed folders>
	@test -n "$(DATA_DIR)" || { echo "usage: make upload-golden STAGE=prod DATA_DIR=<folder of breed folders of photos>"; exit 2; }
	$(STAGE_REGION) $(OFFLINE_PATH) $(BIN)/python -m ops.upload_golden $(STAGE_ARGS) --data-dir "$(DATA_DIR)"

register-model: setup ## register a model.tar.gz of your own as an Approved version (a person's approval): STAGE=... MODEL=... REASON=...
	@test -n "$(MODEL)" -a -n "$(REASON)" || { echo "MODEL (a model.tar.gz) and REASON (why it may serve) are required"; exit 2; }
	$(STAGE_REGION) $(OFFLINE_PATH) $(BIN)/python -m ops.register_model $(STAGE_ARGS) --model "$(MODEL)" --reason "$(REASON)"

destroy-stage: setup ## delete a stage's stack (a feature branch's: FEATURE_BRANCH=...) and what its pipeline made
	$(STAGE_REGION) PATH=$(abspath $(BIN)):$$PATH $(OFFLINE_PATH) $(BIN)/python -m ops.destroy \
		--stack-name "$$($(STAGES_CLI) stack-name $(STAGE_ARGS))" --yes $(ARGS)

pipeline-rehearsal: setup ## the pipeline's make targets in its order against offline stages (BUDGET=full: build, package too)
	$(OFFLINE_PATH) $(BIN)/python -m offline_stack.pipeline_rehearsal $(if $(filter full,$(BUDGET)),--full)

starter-model: setup ## the starter model (ImageNet's dog breeds, real weights, no training) as .offline/starter-model/model.tar.gz
	$(OFFLINE_PATH) $(BIN)/python training_jobs/starter_model.py --output .offline/starter-model/model.tar.gz

upload-data: setup ## upload an ImageFolder data set to the stack's bucket: make upload-data DATA_DIR=~/dogImages BUCKET=<ArtifactsBucketName>
	@test -n "$(DATA_DIR)" -a -n "$(BUCKET)" || { echo "usage: make upload-data DATA_DIR=<folder with train/ valid/ [test/]> BUCKET=<the stack's ArtifactsBucketName>"; exit 2; }
	$(OFFLINE_PATH) $(BIN)/python -m launchers.upload_data --data-dir $(DATA_DIR) --bucket $(BUCKET)

upload-weights: setup ## put ImageNet weights where isolated training jobs read them: make upload-weights BUCKET=... [ARCHITECTURES="resnet50 efficientnet_lite0"]
	@test -n "$(BUCKET)" || { echo "usage: make upload-weights BUCKET=<the stack's ArtifactsBucketName> [ARCHITECTURES=\"resnet50 ...\"]"; exit 2; }
	$(OFFLINE_PATH) $(BIN)/python -m launchers.upload_weights --bucket $(BUCKET) $(foreach a,$(ARCHITECTURES),--architecture $(a))

# sam local with a trained model served where the Lambda containers can reach it: a container of the project's
# own on a Docker network it creates (offline_stack/sam_local.py says how, docs/sam-local.md says why).
FUNCTION ?= PredictFunction
EVENT ?= events/predict-jpeg.json
SAM_LOCAL := PATH=$(abspath $(BIN)):$$PATH $(OFFLINE_PATH) $(BIN)/python -m offline_stack.sam_local

local-invoke: build ## sam local invoke answered by a locally served model: FUNCTION=PredictFunction EVENT=events/predict-jpeg.json
	$(SAM_LOCAL) invoke $(FUNCTION) $(EVENT)

start-api: build ## sam local start-api on 127.0.0.1:3000, answered by a locally served model (Ctrl-C stops it)
	$(SAM_LOCAL) start-api --port $(or $(PORT),3000)

local-down: ## remove the container and network that local-invoke and start-api started
	$(SAM_LOCAL) down

clean: ## remove build outputs (keeps .venv)
	rm -rf .aws-sam .pytest_cache .ruff_cache
