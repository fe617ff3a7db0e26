# Deployment, with the targets the Python version had: package, cf-create, cf-update,
# lambda-update. Parameters come from parameters.json (see parameters.example.json), in the
# form `aws cloudformation create-stack --parameters file://...` takes.
#
#   make package                      # dist/ngs360-omics-<arch>.zip and dist/lambda/bootstrap
#   make cf-create DEPLOY_BUCKET=...  # first deployment (uploads the code to DEPLOY_BUCKET)
#   make cf-update DEPLOY_BUCKET=...  # later deployments
#   make lambda-update                # new code only, same stack
#   make sam-deploy                   # the same through the SAM CLI
#   make lint                         # cfn-lint on the template and on its CloudFormation form
#   make rules                        # the EventBridge rules that invoke the function

STACK_NAME ?= ngs360-omics-run-event-processor
PARAMETERS ?= parameters.json
PYTHON ?= python3
# The architecture comes from parameters.json (Architecture), else arm64, so that the package
# always matches the function.
ARCH ?= $(shell $(PYTHON) -c "import json,sys; print(next((p['ParameterValue'] for p in json.load(open('$(PARAMETERS)')) if p['ParameterKey']=='Architecture'), 'arm64'))" 2>/dev/null || echo arm64)
CARGO_LAMBDA_ARCH = $(if $(filter x86_64,$(ARCH)),--x86-64,--arm64)
ZIP = dist/ngs360-omics-$(ARCH).zip
CAPABILITIES = CAPABILITY_IAM CAPABILITY_AUTO_EXPAND

.PHONY: package cf-create cf-update lambda-update sam-build sam-deploy lint qemu-test bench-arm64-hello clean require-bucket rules \
	python-guest rust-guest publish-guest

## package: the deployment zip (bootstrap for $(ARCH), the guest precompiled inside it)
package:
	@# a native `cargo build --profile lambda` leaves its binary where cargo lambda makes a folder
	@[ ! -f target/lambda/ngs360-omics ] || rm target/lambda/ngs360-omics
	cargo lambda build --profile lambda $(CARGO_LAMBDA_ARCH) --package ngs360-omics --bin ngs360-omics --output-format zip
	mkdir -p dist/lambda
	cp target/lambda/ngs360-omics/bootstrap.zip $(ZIP)
	$(PYTHON) -m zipfile -e $(ZIP) dist/lambda/
	chmod +x dist/lambda/bootstrap
	printf 'build-Function:\n\tcp bootstrap $$(ARTIFACTS_DIR)/\n' > dist/lambda/Makefile
	@$(PYTHON) -c "import os; print('$(ZIP): %.1f MB zip, %.1f MB bootstrap' % (os.path.getsize('$(ZIP)')/1e6, os.path.getsize('dist/lambda/bootstrap')/1e6))"

require-bucket:
	@test -n "$(DEPLOY_BUCKET)" || (echo "set DEPLOY_BUCKET: the S3 bucket that receives the code" && exit 1)

dist/packaged.yaml: template.yaml package require-bucket
	aws cloudformation package --template-file template.yaml --s3-bucket $(DEPLOY_BUCKET) --output-template-file $@

## cf-create: create the stack
cf-create: dist/packaged.yaml
	aws cloudformation create-stack --stack-name $(STACK_NAME) --template-body file://dist/packaged.yaml \
		--parameters file://$(PARAMETERS) --capabilities $(CAPABILITIES)
	aws cloudformation wait stack-create-complete --stack-name $(STACK_NAME)

## cf-update: update the stack (template, parameters and code)
cf-update: dist/packaged.yaml
	aws cloudformation update-stack --stack-name $(STACK_NAME) --template-body file://dist/packaged.yaml \
		--parameters file://$(PARAMETERS) --capabilities $(CAPABILITIES)
	aws cloudformation wait stack-update-complete --stack-name $(STACK_NAME)

## lambda-update: replace the function's code only
lambda-update: package
	aws lambda update-function-code --function-name \
		$$(aws cloudformation describe-stacks --stack-name $(STACK_NAME) --query "Stacks[0].Outputs[?OutputKey=='FunctionArn'].OutputValue" --output text) \
		--zip-file fileb://$(ZIP)

## rules: the EventBridge rules that invoke the stack's function (expected: its event rule and, unless
## ReconcileSchedule is empty, the reconcile schedule; a second event rule,
## made by hand for the Python function, would process every event twice)
rules:
	@name=$$(aws cloudformation describe-stacks --stack-name $(STACK_NAME) \
		--query "Stacks[0].Outputs[?OutputKey=='LambdaFunctionName'].OutputValue" --output text); \
	arn=$$(aws lambda get-function --function-name $$name --query Configuration.FunctionArn --output text); \
	echo "rules that invoke $$arn:"; \
	aws events list-rule-names-by-target --target-arn $$arn --query RuleNames --output text | tr '\t' '\n'

## sam-build / sam-deploy: the same template through the SAM CLI
sam-build: package
	sam build --template-file template.yaml

sam-deploy: sam-build
	sam deploy --stack-name $(STACK_NAME) --resolve-s3 --capabilities $(CAPABILITIES) \
		--parameter-overrides $$($(PYTHON) -c "import json; print(' '.join('%s=%s' % (p['ParameterKey'], p['ParameterValue']) for p in json.load(open('$(PARAMETERS)'))))")

## lint: cfn-lint on the SAM template and on the CloudFormation aws-sam-translator makes of it
lint:
	mkdir -p dist
	cfn-lint template.yaml
	$(PYTHON) tools/sam_translate.py template.yaml dist/template.cfn.json
	cfn-lint dist/template.cfn.json
	$(PYTHON) tools/template_check.py dist/template.cfn.json

## qemu-test: the packaged arm64 bootstrap under qemu-aarch64, driven by the test suite
qemu-test:
	NGS360_AARCH64_BOOTSTRAP=$(CURDIR)/dist/lambda/bootstrap cargo test --release --test suite -- --ignored qemu

## python-guest: the Python guest (examples/python-guest) as a component: dist/guests/python.wasm.
## componentize-py is pinned: another version may make another component from the same code.
COMPONENTIZE_PY_VERSION = 0.25.1
python-guest:
	@$(PYTHON) -m pip show componentize-py 2>/dev/null | grep -qx 'Version: $(COMPONENTIZE_PY_VERSION)' \
		|| $(PYTHON) -m pip install --quiet --disable-pip-version-check componentize-py==$(COMPONENTIZE_PY_VERSION)
	mkdir -p dist/guests
	componentize-py -d wit -w omics-event-processor componentize -p examples/python-guest app -o dist/guests/python.wasm
	@$(PYTHON) -c "import os; print('dist/guests/python.wasm: %.1f MB' % (os.path.getsize('dist/guests/python.wasm')/1e6))"

## rust-guest: the Rust guest template (examples/rust-guest) as a component: dist/guests/rust.wasm
rust-guest:
	cd examples/rust-guest && cargo build --release --target wasm32-wasip2
	mkdir -p dist/guests
	cp $$(cd examples/rust-guest && cargo metadata --format-version 1 --no-deps | $(PYTHON) -c "import json,sys; print(json.load(sys.stdin)['target_directory'])")/wasm32-wasip2/release/ngs360_omics_rust_guest.wasm dist/guests/rust.wasm

## publish-guest: check GUEST, precompile it for ARCH, upload it to GUEST_BUCKET (versioning on),
## and print the stack parameters that select it (and those to roll back to)
publish-guest:
	@test -n "$(GUEST)" || (echo "set GUEST: the component (.wasm) to publish" && exit 1)
	@test -n "$(GUEST_BUCKET)" || (echo "set GUEST_BUCKET: the versioned S3 bucket that keeps guest components" && exit 1)
	cargo build --release --bin ngs360-omics
	$(PYTHON) tools/publish_guest.py $(GUEST) --bucket $(GUEST_BUCKET) --arch $(ARCH) $(if $(GUEST_KEY),--key $(GUEST_KEY))

## bench-arm64-hello: the bare lambda_runtime hello world for arm64, as the package is built
## (bench/run.sh --arm64 dist/lambda/bootstrap --arm64-hello target/lambda/hello/bootstrap)
bench-arm64-hello:
	cargo lambda build --profile lambda --arm64 --package ngs360-omics --example hello

clean:
	rm -rf dist
