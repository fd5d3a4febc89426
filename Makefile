# The two commands of the README.
.PHONY: run test lint

run:
	bin/run

test:
	bin/test

lint:
	bin/setup --dev
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	DEBUG=1 .venv/bin/mypy .
	.venv/bin/lint-imports
