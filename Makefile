# The two set-up commands of README.md:
#   make run    create the environment and serve the dashboard on http://127.0.0.1:8050
#   make test   install what the tests need (browser included) and run every test
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8050

.PHONY: run test lint bench

run:
	scripts/setup-env.sh
	$(VENV)/bin/svdscope serve --host $(HOST) --port $(PORT)

# two pytest-xdist workers of one thread each (tests/conftest.py pins torch and BLAS to one
# thread); --dist loadfile keeps a file's tests, and its module fixtures, on one worker;
# --durations prints the slowest tests. TEST_WORKERS=0 runs in this process only.
TEST_WORKERS ?= 2

test:
	scripts/setup-env.sh test
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
		SVDSCOPE_REQUIRE_REAL_CHECKPOINT=1 SVDSCOPE_REQUIRE_REDIS=1 \
		$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# the benchmarks print tables; `bench` installs their extra packages (locust, weightwatcher)
# with torch held at the 2.13.0 already installed (scripts/setup-env.sh), then runs them all
bench:
	scripts/setup-env.sh
	$(VENV)/bin/python -m pip install -e '.[bench]' 'torch==2.13.0'
	$(VENV)/bin/python bench/bench_svd.py
	$(VENV)/bin/python bench/bench_views.py
	$(VENV)/bin/python bench/bench_load.py
	$(VENV)/bin/python bench/bench_weightwatcher.py
