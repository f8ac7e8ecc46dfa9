.PHONY: check test run format

check:
	scripts/check

test:
	scripts/test

run:
	scripts/run

format:
	.venv/bin/ruff format src tests bench scripts
	.venv/bin/ruff check --fix src tests bench scripts
