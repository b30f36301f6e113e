# Two commands do everything on a fresh machine (see README):
#   make demo   build the pinned environment, then run the whole pipeline on the embedded demo
#   make test   build the pinned environment, then run the test suite
#   make report the HTML report of the finished run (results/report.html; make demo ends with it)
# Extra arguments: make demo SNAKEMAKE_ARGS="-n"   make test PYTEST_ARGS="-k decode"

SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test env lint report

env:
	@tools/venv.sh >/dev/null

demo:
	@venv=$$(tools/venv.sh) && PATH="$$venv/bin:$$PATH" snakemake --cores all $(SNAKEMAKE_ARGS)
	@if [ -z "$(SNAKEMAKE_ARGS)" ]; then $(MAKE) --no-print-directory report; fi

report:
	@venv=$$(tools/venv.sh) && PATH="$$venv/bin:$$PATH" snakemake --report results/report.html \
		&& echo "report: results/report.html"

test:
	@venv=$$(tools/venv.sh) && PATH="$$venv/bin:$$PATH" tools/pytest.sh $(PYTEST_ARGS)

lint:
	@venv=$$(tools/venv.sh) && PATH="$$venv/bin:$$PATH" snakemake --lint
