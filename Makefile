# Gatehouse: `make run` serves the demo on http://127.0.0.1:8000, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Two stamps: `make run` installs only what serving needs (SQLite is built in, so no PostgreSQL
# driver); `make test` (and lint, bench) adds the test tools and the PostgreSQL driver on top.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

# The demo configuration: environment variables only, as on a Heroku-style deploy.
DEMO_ENV := GATEHOUSE_TOOL__NAME="Gatehouse demo tool" \
	GATEHOUSE_TOOL__DESCRIPTION="A demonstration tool registered by Gatehouse." \
	GATEHOUSE_TOOL__SCOPES='["https://purl.imsglobal.org/spec/lti-ags/scope/score", "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem", "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"]' \
	GATEHOUSE_SECURITY__ALLOW_INSECURE_PLATFORMS=true \
	GATEHOUSE_REGISTRATION__AUTO_ACTIVATE=true \
	GATEHOUSE_SECURITY__ISSUER_CHECK=strict

CHROMIUM ?= /usr/bin/chromium
# The real Moodle of tests/test_moodle.py (skipped when it is not next to the checkout).
MOODLE_HOME ?= $(firstword $(wildcard ../shared/lms/moodle ../../shared/lms/moodle \
	/work/shared/lms/moodle) ../shared/lms/moodle)
MOODLE_PACKAGES := php-cli php-pgsql php-xml php-mbstring php-curl php-zip php-gd php-intl \
	php-soap php-bcmath curl xz-utils
OIDC_MODULES := tests/support/oidc/node_modules/.installed
AXE_MODULES := tests/support/axe/node_modules/.installed
LTIJS_MODULES := bench/ltijs/node_modules/.installed

.PHONY: install run test test-deps chromium postgresql redis moodle-deps lint clean bench bench-deps wrk \
	translations screenshots

# pip's own lines (Collecting…, Installing…) are the progress: a first install takes a minute.
$(RUN_STAMP): pyproject.toml
	@echo "==> Creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> Upgrading pip"
	$(BIN)/pip install --quiet --upgrade pip
	@echo "==> Installing Gatehouse and what it needs to run"
	$(BIN)/pip install --progress-bar on -e .
	touch $@

$(TEST_STAMP): $(RUN_STAMP)
	@echo "==> Installing the test tools (pytest, ruff, playwright, schemathesis, hypothesis)" \
		"and the PostgreSQL driver"
	$(BIN)/pip install --progress-bar on -e '.[test,postgres]'
	touch $@

install: $(TEST_STAMP)

# GATEHOUSE_BANNER: print what to do next once the server is up (app/gunicorn_config.py).
run: $(RUN_STAMP)
	@echo "==> Starting Gatehouse on http://127.0.0.1:$(PORT)/"
	@$(DEMO_ENV) GATEHOUSE_BANNER=1 HOST=127.0.0.1 PORT=$(PORT) \
		$(BIN)/gunicorn -c python:app.gunicorn_config wsgi:app

# What the browser tests need: Debian's Chromium (Playwright cannot download its own here),
# the npm packages of the test OpenID Provider and of axe-core (the accessibility checks); the
# PostgreSQL tests need the server binaries (each test session runs its own throw-away
# cluster, never the system one), and the shared-limits tests redis-server (likewise their own
# throw-away server).
test-deps: $(TEST_STAMP) $(OIDC_MODULES) $(AXE_MODULES)
	@test -x $(CHROMIUM) || $(MAKE) --no-print-directory chromium
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		$(MAKE) --no-print-directory postgresql
	@command -v redis-server >/dev/null || $(MAKE) --no-print-directory redis
	@$(MAKE) --no-print-directory moodle-deps

chromium:
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "Browser tests need Chromium: sudo apt-get install chromium" >&2; \
	fi

# --no-upgrade: never upgrade (or restart) a PostgreSQL already installed here.
postgresql:
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-upgrade postgresql; \
	else \
		echo "PostgreSQL tests need the server: sudo apt-get install postgresql" >&2; \
	fi

# --no-upgrade, as above; the tests never use the system's redis-server service, only the binary.
redis:
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-upgrade redis-server; \
	else \
		echo "The shared-limits tests need Redis: sudo apt-get install redis-server" >&2; \
	fi

# What the real-Moodle tests' start.sh needs besides the PostgreSQL binaries above (it would
# install PHP itself, but apt inside a test session is slow and its output hidden).
moodle-deps:
	@if [ ! -x $(MOODLE_HOME)/start.sh ]; then \
		echo "No $(MOODLE_HOME)/start.sh: the real-Moodle tests will be skipped"; \
	elif dpkg -s $(MOODLE_PACKAGES) >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-upgrade $(MOODLE_PACKAGES); \
	else \
		echo "The real-Moodle tests need root (start.sh uses apt and runuser)" >&2; \
	fi

$(OIDC_MODULES): tests/support/oidc/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	npm ci --prefix tests/support/oidc --no-audit --no-fund --loglevel=error
	touch $@

$(AXE_MODULES): tests/support/axe/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	npm ci --prefix tests/support/axe --no-audit --no-fund --loglevel=error
	touch $@

# Two workers, one per core of the project's machines (TEST_WORKERS=0 runs in one process).
# --dist loadfile: a test file runs on one worker, so the real Moodle (one fixed port, started
# once by tests/test_moodle.py's session fixture) is started by one worker only. (loadgroup would
# do it by mark, but pytest-xdist 3.8 cannot tag node ids under pytest 9: the groups split.)
TEST_WORKERS ?= 2
test: test-deps lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The benchmark (README, Performance): about ten minutes, plus two once to install ltijs;
# `make test` runs only its smoke test (tests/test_bench.py).
bench: bench-deps
	$(BIN)/python -m bench.run

# ltijs, the peer, from the npm registry (its sqlite3 driver compiles here: a few minutes, once),
# matplotlib for the chart, and PostgreSQL for Gatehouse's launches on it. A failed install is not
# fatal: the benchmark then prints what it could not measure or draw, and why.
bench-deps: $(TEST_STAMP)
	@$(BIN)/python -c "import matplotlib" 2>/dev/null || \
		$(BIN)/pip install --progress-bar on -e '.[bench]' || \
		echo "matplotlib could not be installed: the benchmark will draw no chart" >&2
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		$(MAKE) --no-print-directory postgresql
	@command -v wrk >/dev/null || $(MAKE) --no-print-directory wrk
	@$(MAKE) --no-print-directory $(LTIJS_MODULES) || \
		echo "ltijs could not be installed (see bench/ltijs/npm-install.log)" >&2

wrk:
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	else \
		echo "The key-set benchmark wants wrk: sudo apt-get install wrk" >&2; \
	fi

$(LTIJS_MODULES): bench/ltijs/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	npm ci --prefix bench/ltijs --no-audit --no-fund --loglevel=error \
		$$([ -f /usr/include/node/node.h ] && echo --nodedir=/usr) \
		> bench/ltijs/npm-install.log 2>&1 || { tail -20 bench/ltijs/npm-install.log >&2; exit 1; }
	touch $@

# The pages' catalogues (README, "Languages"): extract the marked words of babel.cfg's files,
# merge them into each language's messages.po (new ones empty, for a translator to fill in), and
# compile the .mo files Gatehouse serves (committed, so an install needs no build step).
# tests/test_i18n.py fails while any is untranslated or a .mo is older than its .po.
TRANSLATIONS := app/translations
translations: $(RUN_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k _l -k N_ --no-location \
		--sort-output --add-comments=TRANSLATORS: -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) \
		--no-fuzzy-matching --ignore-obsolete --width=100
	$(BIN)/pybabel compile -d $(TRANSLATIONS) --statistics

# The README's pictures, from the running app (scripts/screenshots.py): about a minute. Re-run it
# after changing a page, and commit docs/screenshots/.
screenshots: $(TEST_STAMP)
	@test -x $(CHROMIUM) || $(MAKE) --no-print-directory chromium
	$(BIN)/python -m scripts.screenshots

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info
